"""Every page of an Indonesian-speaking clinic is in Indonesian: the crawl's list (every route with GET, real ids
from the demo) is read as Dewi Manajer (no language of her own: her site's, Indonesian), as the administrator set
to Indonesian (for the pages a manager may not open), and on an enrolled Jakarta tablet as Sari (PIN 1234); the
visible text of each page (no tags, scripts, styles or attribute values) must hold no English sentence of the
catalogue. An English sentence is a msgid, or the literal part of one between its placeholders, of at least three
words or twelve characters whose Indonesian text differs; proper nouns and data that look like one are allowed
explicitly (ALLOWED).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from compliance.extensions import db as _db
from compliance.sites.models import Site, User
from tests.test_permissions import _ids

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")
TAG = re.compile(r"<[^>]+>")
# Routes a crawl does not GET: signing out ends the session; the others need a token from an email or a link.
SKIPPED = {"static", "auth.logout", "auth.enrol_from_link", "accounts.reset_password", "accounts.accept_invitation",
           "setup.setup_page"}
# English on an Indonesian page that is right there: proper nouns and data (the demo's own records, typed in English).
ALLOWED = {"Needle cartridge 12-pin 0.5 mm"}


def _squash(text: str) -> str:
    return " ".join(text.split())


def english_sentences() -> dict[str, str]:
    """Each English fragment the crawl looks for → the msgid it comes from."""
    with open(ROOT / "compliance/translations/id/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    found: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        # A msgid whose Indonesian text is missing (empty) is shown in English as it is: looked for too.
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            if msgid in strings:
                continue  # the same in both languages (a brand, "PIN", "Email")
            for piece in PLACEHOLDER.split(TAG.sub(" ", msgid)):
                piece = _squash(piece).strip(" ·:;,.()—–-“”\"'")
                if len(piece.split()) >= 3 or len(piece) >= 12:
                    found.setdefault(piece, msgid)
    return found


class _Visible(HTMLParser):
    """The text a person sees in the page's language: character data outside <script>, <style> and <template>,
    and outside an element marked as another language (lang="en": an email written for an English reader, the
    English column of a bilingual preview) or as data not to translate (translate="no": the audit log's values)."""

    HIDDEN = {"script", "style", "template"}

    def __init__(self, language: str):
        super().__init__(convert_charrefs=True)
        self.language = language
        self.hidden_tag: str | None = None  # the element whose content is left out, and its nesting depth
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if self.hidden_tag is not None:
            self.depth += tag == self.hidden_tag
            return
        values = dict(attrs)
        lang = (values.get("lang") or self.language).split("-")[0]
        if tag in self.HIDDEN or lang != self.language or values.get("translate") == "no":
            self.hidden_tag, self.depth = tag, 1
        elif tag in ("br", "p", "div", "li", "td", "th", "tr", "option", "h1", "h2", "h3", "label", "button", "dt",
                     "dd", "summary"):
            self.chunks.append("\n")  # a block or cell boundary is never inside one sentence

    def handle_endtag(self, tag):
        if self.hidden_tag is not None:
            if tag == self.hidden_tag:
                self.depth -= 1
                if not self.depth:
                    self.hidden_tag = None
            return
        self.chunks.append(" ")

    def handle_data(self, data):
        if self.hidden_tag is None:
            self.chunks.append(data)


def visible_text(html: str, language: str = "id") -> str:
    parser = _Visible(language)
    parser.feed(html)
    parser.close()
    # One line per block; words inside a block (across inline tags) joined by single spaces.
    return "\n".join(_squash(line) for line in "".join(parser.chunks).split("\n") if line.strip())


def english_in(text: str, sentences: dict[str, str]) -> list[str]:
    """The English fragments that occur in `text` as whole words."""
    hits = []
    for piece in sentences:
        start = text.find(piece)
        while start != -1:
            end = start + len(piece)
            before = text[start - 1] if start else " "
            after = text[end] if end < len(text) else " "
            if not (before.isalnum() or after.isalnum()):
                hits.append(piece)
                break
            start = text.find(piece, start + 1)
    return hits


def _crawl_urls(app, ids) -> list[tuple[str, str]]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIPPED or rule.rule.startswith("/api/"):
            continue
        url = rule.rule
        for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
            url = re.sub(rf"<(?:\w+:)?{name}>", str(ids.get(name, 999999)), url)
        urls.append((rule.endpoint, url))
    return sorted(urls)


def _sign_in(client, user_id: int) -> None:
    with client.session_transaction() as session:
        session.clear()
        session["_user_id"] = str(user_id)
        session["_fresh"] = True


def _read(client, urls, who: str, sentences, found: dict, statuses: dict) -> None:
    for endpoint, url in urls:
        response = client.get(url)
        statuses[(who, url)] = response.status_code
        if response.status_code >= 500:
            found.setdefault(f"{who} {url}", []).append(f"server error {response.status_code}")
            continue
        if "text/html" not in response.headers.get("Content-Type", ""):
            continue
        text = visible_text(response.get_data(as_text=True))
        for data in ALLOWED:
            text = text.replace(data, "")
        hits = english_in(text, sentences)
        if hits:
            found.setdefault(f"{who} {url} ({endpoint})", []).extend(hits)


def test_english_fragments_are_found_and_single_words_are_not():
    sentences = {"Leave blank if this course does not expire": "…", "in all · page": "…"}
    page = ("<html><head><style>.x{}</style><script>var s='Leave blank if this course does not expire';</script>"
            "</head><body><p title='in all · page'>Biarkan kosong</p><span>3 in all · page 1 of 2</span></body>")
    assert english_in(visible_text(page), sentences) == ["in all · page"]
    assert visible_text("<p>Kata <b>satu</b> dua</p><p>tiga</p>") == "Kata satu dua\ntiga"
    assert visible_text('<p>Satu <span lang="en">in all · page <b>x</b></span> <i translate="no">a <i>b</i></i> dua'
                        '<input name="in all · page"></p>') == "Satu dua"
    assert "Next" not in english_sentences()  # one short word: the same in many languages, never looked for


@pytest.mark.slow
def test_every_page_of_an_indonesian_site_is_in_indonesian(app, client, runner, db, enrol_tablet):
    assert runner.invoke(args=["demo"]).exit_code == 0
    site = _db.session.scalar(select(Site).where(Site.name == "Jakarta Kemang"))
    manager = _db.session.scalar(select(User).where(User.email == "manager@demo.clinic"))
    admin = _db.session.scalar(select(User).where(User.email == "admin@demo.clinic"))
    sari = _db.session.scalar(select(User).where(User.email == "sari@demo.clinic"))
    assert site.language == "id" and manager.language is None and sari.language is None
    admin.language = "id"  # the pages only an administrator opens, in Indonesian too
    _db.session.commit()
    manager_id, admin_id, sari_id = manager.id, admin.id, sari.id
    urls = _crawl_urls(app, _ids(site))
    sentences = english_sentences()
    assert len(sentences) > 500  # the catalogue was read

    found: dict[str, list[str]] = {}
    statuses: dict = {}
    _sign_in(client, manager_id)
    _read(client, urls, "manager", sentences, found, statuses)
    _sign_in(client, admin_id)
    _read(client, [u for u in urls if statuses[("manager", u[1])] == 403], "admin", sentences, found, statuses)
    with client.session_transaction() as session:
        session.clear()
    enrol_tablet(site, "Jakarta crawl")
    assert client.form_post(f"/tablet/pin/{sari_id}", {"pin": "1234"}).status_code == 302
    _read(client, urls, "tablet", sentences, found, statuses)

    read = [key for key, status in statuses.items() if status == 200]
    assert len(read) > 100, f"only {len(read)} pages answered 200"  # the crawl reached real pages
    report = "\n".join(f"{page}: {sorted(set(hits))}" for page, hits in sorted(found.items()))
    assert not found, f"English on {len(found)} Indonesian pages:\n{report}"
