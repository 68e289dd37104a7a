"""axe-core on every page: each manager page (the GET routes without parameters and one real record of each
kind, from the demo data) signed in as the demo admin, and each tablet page as Sari on the Jakarta tablet.

Every page is visited before the test fails, so one run lists every violation of every page (also saved as
JSON next to the screenshots in test-artifacts/browser/).
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from compliance.auth.models import TabletDevice
from compliance.sites.models import Site
from tests.test_permissions import PUBLIC, _ids

from .conftest import ARTIFACTS, JAKARTA, _artifact_name, axe_violations, describe_violations

pytestmark = pytest.mark.browser

ADMIN, ADMIN_PASSWORD = "admin@demo.clinic", "demo-password-2026"

# Not an HTML page: files, exports, the API's own description.
NOT_PAGES = {"audit.export_zip", "reports.audit_report_pdf", "reports.audit_report_zip", "api-docs.openapi_json",
             "checklists.answer_file", "checklists_admin.run_file", "health.healthz",
             "sterilisation.download_curve_file", "sterilisation.load_pdf",
             "checklists.now_summary", "sterilisation.now_summary",  # (and fragments the Now screen loads)
             "offline.fresh_token"}  # JSON for the tablet's script
# Pages that need a query string to show anything: the one each gets.
QUERY = {"sterilisation.print_labels": "cycle={cycle_id}", "stock.print_unit_labels": ""}


def _urls(live, tablet: bool) -> list[str]:
    """Every GET page of one kind (the tablet's under /tablet and /decontamination, or the manager's), its
    parameters filled with real demo records of Jakarta."""
    with live.session() as s:
        site = s.scalar(select(Site).where(Site.name == JAKARTA))
        ids = _ids(site)
    urls = []
    for rule in sorted(live.app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.rule.startswith("/api/") or rule.endpoint in PUBLIC | NOT_PAGES:
            continue
        on_tablet = rule.rule.startswith(("/tablet/", "/decontamination", "/p/"))
        if on_tablet != tablet:
            continue
        url = rule.rule
        for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
            url = re.sub(rf"<(?:\w+:)?{name}>", str(ids.get(name, 999999)), url)
        if QUERY.get(rule.endpoint):
            url += "?" + QUERY[rule.endpoint].format(**ids)
        urls.append(url)
    return urls


def _sweep(page, urls: list[str], base: str) -> list[str]:
    """Each page: it loads, every request it makes (styles, scripts, its icon) is answered, axe finds nothing."""
    failures, refused = [], []
    page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    for url in urls:
        refused.clear()
        response = page.goto(url)
        if response is None or response.status >= 400:
            failures.append(f"{url}: HTTP {response.status if response else '-'}")
            continue
        icon = page.locator("link[rel=icon]")
        if not icon.count():
            failures.append(f"{url}: no <link rel=icon> (the browser asks for /favicon.ico: a 404)")
        elif (status := page.request.get(icon.first.get_attribute("href")).status) != 200:
            failures.append(f"{url}: its icon answers {status}")
        violations = axe_violations(page)
        if refused:
            failures.append(f"{url}: requests refused: {', '.join(refused)}")
        if violations:
            name = re.sub(r"[^A-Za-z0-9]+", "_", url).strip("_")
            (ARTIFACTS / f"{base}--axe-{name}.json").write_text(json.dumps(violations, indent=2))
            failures.append(f"{url}:\n" + describe_violations(violations))
    return failures


def test_every_manager_page_has_no_axe_violation(page, live, request):
    site_id = live.site_id(JAKARTA)
    with live.session() as s:  # an enrolled tablet, so that the Tablets page has a row (and its table)
        if not s.scalar(select(TabletDevice.id).limit(1)):
            s.add(TabletDevice(site_id=site_id, name="Sweep tablet", token_hash="0" * 64))
            s.commit()
    urls = _urls(live, tablet=False)
    assert len(urls) > 40, urls
    page.goto("/login")
    page.fill("#email", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/overview")
    failures = _sweep(page, urls, _artifact_name(request.node.nodeid))
    assert not failures, f"{len(failures)} of {len(urls)} manager pages fail:\n" + "\n".join(failures)


def test_every_tablet_page_has_no_axe_violation(tablet, live, request):
    urls = _urls(live, tablet=True)
    assert len(urls) > 10, urls
    page = tablet()
    failures = _sweep(page, urls, _artifact_name(request.node.nodeid))
    assert not failures, f"{len(failures)} of {len(urls)} tablet pages fail:\n" + "\n".join(failures)
