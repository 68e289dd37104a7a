"""HTML to PDF with WeasyPrint, for the audit and trace reports. The page's stylesheet is read from the app's
static folder, never over HTTP: the fetcher serves /static/… from disk and refuses every other URL."""
from __future__ import annotations

import mimetypes
import os
from urllib.parse import urlsplit

from flask import current_app
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse
from werkzeug.security import safe_join


class StaticFilesOnly(URLFetcher):
    """Serves the app's static files under base_url; any other URL stops the rendering (a report that
    silently lost its stylesheet, or that fetched from the network, is worse than an error)."""

    def __init__(self, base_url: str, static_folder: str, static_url_path: str):
        super().__init__(fail_on_errors=True)
        base = urlsplit(base_url)
        self._origin = (base.scheme, base.netloc)
        self._prefix = static_url_path.rstrip("/") + "/"
        self._folder = static_folder

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) == self._origin and parts.path.startswith(self._prefix):
            path = safe_join(self._folder, parts.path[len(self._prefix):])
            if path and os.path.isfile(path):
                with open(path, "rb") as fh:
                    body = fh.read()
                kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return URLFetcherResponse(url, body, {"Content-Type": kind})
        raise ValueError(f"the PDF may only load the app's static files, not {url}")


def render_pdf(html: str, base_url: str = "http://localhost/") -> bytes:
    """The PDF of a page rendered by our templates (A4 and the rest come from its print stylesheet).
    Relative links resolve against base_url, so the PDF's links open the same pages on this server."""
    app = current_app
    fetcher = StaticFilesOnly(base_url, app.static_folder, app.static_url_path)
    return HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()
