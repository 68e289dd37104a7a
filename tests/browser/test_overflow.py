"""No tablet page overflows the screen sideways, in Indonesian, at 768×1024 and 1024×768, with long texts stored.

The Jakarta tablet (Sari, Indonesian) opens every tablet page (the ones test_every_page sweeps: Now, checklists,
a run, treatment start and record, screening, finish, decontamination) after the demo records they show were
given long texts: a 4,000-character treatment note with a 300-letter "word", long aftercare, product names and
lots, a long screening note and checklist answer notes. On each page, script in the page lists every element whose
box reaches past document.documentElement.clientWidth, and the document must not scroll sideways. A box that
scrolls on purpose (a wide table inside .table-wrap) holds its content: its children are not counted.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from compliance.checklists.models import Answer, ChecklistRun
from compliance.sites.models import Site
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


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v['width']}x{v['height']}")
def test_no_tablet_page_overflows_sideways_with_long_indonesian_texts(tablet, live, shot, viewport):
    _store_long_texts(live)
    urls = _urls(live, tablet=True)
    page = tablet(viewport=viewport)
    assert page.locator("html").get_attribute("lang") == "id"
    failures = []
    for url in urls:
        response = page.goto(url)
        assert response is not None and response.status < 400, f"{url}: HTTP {response.status if response else '-'}"
        page.wait_for_load_state("networkidle")
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
