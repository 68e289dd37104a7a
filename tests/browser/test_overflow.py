"""No tablet page overflows the screen sideways, in Indonesian, at 768×1024 and 1024×768, with long texts stored.

The Jakarta tablet (Sari, Indonesian) opens every tablet page (the ones test_every_page sweeps: Now, checklists,
a run, treatment start and record, screening, finish, decontamination) after the demo records they show were
given long texts: a 4,000-character treatment note with a 300-letter "word", long aftercare, product names and
lots, a long screening note and checklist answer notes; and the scan page of an open treatment in its "Use first" state
(the oldest sterile pack of each device kind suggested, the kinds given long Indonesian names and their devices long
serials). On each page, script in the page lists every element whose
box reaches past document.documentElement.clientWidth, and the document must not scroll sideways. A box that
scrolls on purpose (a wide table inside .table-wrap) holds its content: its children are not counted.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import select

from compliance.auth.actor import actor_for_user
from compliance.checklists.models import Answer, ChecklistRun
from compliance.devices.models import Device, DeviceType
from compliance.sites.models import Site, User
from compliance.sterilisation.models import Pack, PackItem
from compliance.timeutil import utcnow
from compliance.treatments import services as treatments
from compliance.treatments.models import Treatment

from .conftest import EMMA, EMMA_PIN, JAKARTA, LONDON
from .test_every_page import _urls
from .test_treatments import _open_treatment

pytestmark = pytest.mark.browser

VIEWPORTS = [{"width": 768, "height": 1024}, {"width": 1024, "height": 768}]
LONG_WORD = "Pembersihan" * 28  # about 300 letters without a space or a hyphen
SENTENCE = ("Klien melaporkan kemerahan ringan di area pipi setelah perawatan sebelumnya; dianjurkan kompres "
            "dingin dan tabir surya berspektrum luas selama tujuh hari. ")
LONG_NOTE = (SENTENCE * 40 + LONG_WORD)[:4000]

# For each element that reaches past the right edge (or starts left of 0): its tag, classes, text and box.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = el => { const s = getComputedStyle(el); return ['auto', 'scroll'].includes(s.overflowX); };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.visually-hidden')) continue;
    let p = el.parentElement, inside = false;
    while (p && p !== document.body) { if (scrolls(p)) { inside = true; break; } p = p.parentElement; }
    if (inside) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > width + 0.5 || r.left < -0.5) {
      const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
      out.push(`<${[el.tagName.toLowerCase(), ...classes].join('.')}> ${Math.round(r.left)}..${Math.round(r.right)}`
               + ` of ${width}: ` + (el.textContent || '').trim().slice(0, 60));
    }
  }
  return {overflowing: out, scrollWidth: document.documentElement.scrollWidth, width};
}"""


def _store_long_texts(live) -> None:
    """Long texts on the Jakarta records the tablet pages show (the demo's treatments, its checklist answers)."""
    with live.session() as s:
        site_id = s.scalar(select(Site.id).where(Site.name == JAKARTA))
        for t in s.scalars(select(Treatment).where(Treatment.site_id == site_id)):
            t.notes = LONG_NOTE
            t.aftercare = SENTENCE * 6 + LONG_WORD
            t.products = [{"name": "Petroleum jelly steril dengan lidokain topikal lima persen " + LONG_WORD[:60],
                           "lot": "LOT-" + "7" * 40}]
            if t.screening:
                t.screening = {**t.screening, "notes": SENTENCE * 8 + LONG_WORD}
        run_ids = select(ChecklistRun.id).where(ChecklistRun.site_id == site_id)
        for a in s.scalars(select(Answer).where(Answer.run_id.in_(run_ids))):
            a.note = (SENTENCE * 10 + LONG_WORD)[:2000]
        s.commit()


@contextmanager
def _use_first_state(live):
    """An open treatment at Jakarta (Sari's) whose scan page suggests packs to use first: the device kinds of
    Jakarta's sterile packs renamed to long Indonesian names, their devices given long serials; put back after."""
    with live.session() as s:
        site = s.scalar(select(Site).where(Site.name == JAKARTA))
        sari = s.scalar(select(User).where(User.email == "sari@demo.clinic"))
        actor, now = actor_for_user(sari), utcnow()
        client = treatments.create_client(actor, {"site_id": site.id}, now)
        room = next(r for r in site.rooms if r.kind == "treatment")
        treatment = treatments.start_treatment(actor, {"room_id": room.id, "client_id": client.id,
                                                       "procedure": "acne_scars", "method": "pen"}, now)
        devices = list(s.scalars(select(Device).join(PackItem).join(Pack).where(
            Pack.site_id == site.id, Pack.status == "sterile", Pack.expires_at > now).distinct()))
        assert devices, "the demo has no sterile pack at Jakarta to suggest"
        kinds = {d.device_type_id: s.get(DeviceType, d.device_type_id) for d in devices}
        names = {k.id: k.name for k in kinds.values()}
        serials = {d.id: d.serial for d in devices}
        for n, kind in enumerate(kinds.values()):
            kind.name = f"Pemegang ujung pen mikro-needling baja tahan karat untuk perawatan wajah dan tubuh klien {n}"
        for n, device in enumerate(devices):  # as long as a serial may be (80), without a space or a hyphen
            device.serial = f"SN{n:03d}" + "7" * 75
        s.commit()
        treatment_id = treatment.id
    try:
        yield f"/tablet/treatments/{treatment_id}"
    finally:
        with live.session() as s:
            for kind_id, name in names.items():
                s.get(DeviceType, kind_id).name = name
            for device_id, serial in serials.items():
                s.get(Device, device_id).serial = serial
            sari = s.scalar(select(User).where(User.email == "sari@demo.clinic"))
            treatments.abandon_treatment(actor_for_user(sari), treatment_id, {"reason": "overflow test"}, utcnow())
            s.commit()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
def test_no_tablet_page_overflows_sideways_with_long_indonesian_texts(tablet, live, shot, viewport):
    _store_long_texts(live)
    with _use_first_state(live) as scan_page:
        _check_pages(tablet, shot, viewport, _urls(live, tablet=True) + [scan_page], scan_page)


def _check_pages(tablet, shot, viewport, urls: list[str], scan_page: str) -> None:
    page = tablet(viewport=viewport)
    assert page.locator("html").get_attribute("lang") == "id"
    failures = []
    for url in urls:
        response = page.goto(url)
        assert response is not None and response.status < 400, f"{url}: HTTP {response.status if response else '-'}"
        page.wait_for_load_state("networkidle")
        if url == scan_page:  # the state under test is there: "Use first" with its suggestions
            assert page.locator("button.use-code").count() > 0, "no pack suggested on the scan page"
            shot(page, "use-first")
        found = page.evaluate(OVERFLOWING)
        if found["overflowing"] or found["scrollWidth"] > found["width"]:
            shot(page, url.strip("/").replace("/", "_"))
            failures.append(f"{url}: the document is {found['scrollWidth']} px wide in {found['width']} px\n    "
                            + "\n    ".join(found["overflowing"][:12]))
    assert not failures, f"{len(failures)} of {len(urls)} tablet pages overflow at {viewport}:\n" + "\n".join(failures)


# Each link, button and disclosure in the page's main part that is not a link inside running text: its box.
SMALL_TARGETS = """(min) => {
  const out = [];
  for (const el of document.querySelectorAll('main a[href], main button, main summary, main [role=button]')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const parent = el.parentElement;
    const inText = getComputedStyle(el).display === 'inline' && parent &&
      [...parent.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (inText) continue;
    if (r.width < min || r.height < min)
      out.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}" `
               + `${Math.round(r.width)}×${Math.round(r.height)}`);
  }
  return out;
}"""


def test_tablet_targets_are_at_least_44_px(tablet, live):
    """Buttons, links standing on their own and disclosures on the tablet pages, among them the screening's
    "Change" (Indonesian "Ubah") on an open treatment, are at least 44 × 44 px."""
    treatment_id = _open_treatment(live, screened=True)  # at London: Emma's tablet
    visits = [(tablet(LONDON, EMMA, EMMA_PIN), f"/tablet/treatments/{treatment_id}")]
    sari = tablet()
    visits += [(sari, url) for url in _urls(live, tablet=True)]
    failures = []
    for page, url in visits:
        response = page.goto(url)
        assert response is not None and response.status < 400, f"{url}: HTTP {response.status if response else '-'}"
        page.wait_for_load_state("networkidle")
        small = page.evaluate(SMALL_TARGETS, 44)
        if small:
            failures.append(f"{url}: " + "; ".join(small))
    assert not failures, "targets under 44 px:\n" + "\n".join(failures)
