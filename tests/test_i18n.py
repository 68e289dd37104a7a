"""Both catalogues are complete: every string in the code and templates has an English and an Indonesian text."""
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
METHODS = [("compliance/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "pgettext": ((1, "c"), 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _folder_read(path: str) -> bool:
    """Every folder but hidden ones and caches: Babel's default also skips "_" folders, such as templates/_macros."""
    name = Path(path).name
    return not name.startswith(".") and name != "__pycache__"


def _source_messages() -> set[tuple[str, str | None]]:
    """(msgid, context) of every string; a context ("verb") tells apart words written alike ("Open")."""
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS,
                                                                   directory_filter=_folder_read):
        found.add((message if isinstance(message, str) else message[0], _ctx))
    return found


@pytest.fixture(scope="module")
def source_messages():
    messages = _source_messages()
    assert len(messages) > 100  # the extraction itself worked
    assert ("%(total)s in all · page %(page)s of %(pages)s", None) in messages  # templates/_macros/ui.html was read
    return messages


@pytest.mark.parametrize("language", ["en", "id"])
def test_catalogue_has_every_string_translated(language, source_messages):
    with open(ROOT / f"compliance/translations/{language}/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    missing = sorted(m for m, ctx in source_messages
                     if catalog.get(m, context=ctx) is None or not catalog.get(m, context=ctx).string)
    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert not missing, f"{len(missing)} untranslated in {language} (run scripts/i18n, then translate): {missing[:10]}"
    assert not fuzzy, f"fuzzy entries in {language}: {fuzzy[:10]}"


def test_indonesian_keeps_every_placeholder(source_messages):
    with open(ROOT / "compliance/translations/id/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    for message in catalog:
        if message.id and message.string:
            if isinstance(message.id, tuple):  # plural: each form uses placeholders of the English forms
                allowed = set(PLACEHOLDER.findall(message.id[0])) | set(PLACEHOLDER.findall(message.id[1]))
                for text in message.string:
                    if text:  # a missing one is reported by the completeness test
                        assert set(PLACEHOLDER.findall(text)) <= allowed, message.id
            else:
                assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), message.id


def _translation(msgid: str, language: str) -> str:
    with open(ROOT / f"compliance/translations/{language}/LC_MESSAGES/messages.po", "rb") as fh:
        return read_po(fh)[msgid].string


def test_indonesian_sites_screens_are_in_indonesian(client, login_as, make_site, make_user):
    jakarta = make_site(name="Jakarta ID", timezone="Asia/Jakarta", language="id")
    manager = make_user("manager", [jakarta])  # no language of their own: the site's
    login_as(manager)
    page = client.get("/people").get_data(as_text=True)
    assert '<html lang="id">' in page
    assert _translation("Sign out", "id") in page and ">Sign out<" not in page


def test_a_persons_own_language_wins_over_the_sites(client, login_as, make_site, make_user):
    jakarta = make_site(name="Jakarta EN", timezone="Asia/Jakarta", language="id")
    login_as(make_user("manager", [jakarta], language="en"))
    page = client.get("/people").get_data(as_text=True)
    assert '<html lang="en">' in page and ">Sign out<" in page


def test_tablet_of_an_indonesian_site_speaks_indonesian(client, make_site, make_user, enrol_tablet):
    jakarta = make_site(name="Jakarta Tablet", timezone="Asia/Jakarta", language="id")
    make_user("staff", [jakarta], name="Sari")
    enrol_tablet(jakarta)
    page = client.get("/tablet").get_data(as_text=True)
    assert _translation("Who is working?", "id") in page


def test_words_written_alike_are_told_apart_by_context(client, login_as, make_site, make_user):
    """"Open" the verb (a button: Buka) is not "Open" the state (Terbuka)."""
    jakarta = make_site(name="Jakarta Open", timezone="Asia/Jakarta", language="id")
    login_as(make_user("manager", [jakarta]))
    page = client.get("/decontamination").get_data(as_text=True)
    assert ">Buka</button>" in page and "Terbuka" not in page
    recalls = client.get("/recalls").get_data(as_text=True)
    assert ">Terbuka</a>" in recalls
