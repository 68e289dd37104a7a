"""render_pdf reads the app's static files from disk and nothing else: no HTTP, no file outside static/."""
import io

import pytest
from pypdf import PdfReader
from weasyprint.urls import FatalURLFetchingError

from compliance.reports.pdf import render_pdf


def _html(href: str) -> str:
    return f'<!doctype html><html><head><link rel="stylesheet" href="{href}"></head><body><p>Hello</p></body></html>'


def test_the_print_stylesheet_is_read_from_the_static_folder(app):
    with app.test_request_context():
        body = render_pdf(_html("/static/css/print.css"), base_url="http://clinic.test/")
    assert body.startswith(b"%PDF-")
    assert "Hello" in PdfReader(io.BytesIO(body)).pages[0].extract_text()


@pytest.mark.parametrize("href", ["http://example.com/evil.css", "/static/../../pyproject.toml",
                                  "/static/css/missing.css", "file:///etc/passwd"])
def test_any_other_url_stops_the_rendering(app, href):
    with app.test_request_context(), pytest.raises(FatalURLFetchingError):
        render_pdf(_html(href), base_url="http://clinic.test/")
