"""Screenshots of the main screens (for people to look at): python scripts/screenshots.py BASE_URL OUT_DIR.

Signs in as the demo manager (Jakarta: Indonesian) and the demo admin, sets the browser up as the Jakarta
tablet through a set-up link, signs Sari in by PIN, and saves PNGs at a tablet's 768x1024.
"""
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def main(base: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    demo = subprocess.run([".venv/bin/flask", "--app", "wsgi", "tablet-link", "--site", "Jakarta Kemang"],
                          capture_output=True, text=True, check=True).stdout.strip()
    link = re.sub(r"^https?://[^/]+", base, demo)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for who, pages in (("manager@demo.clinic", ["/overview", "/people", "/training", "/rooms"]),
                           ("admin@demo.clinic", ["/sites", "/people/new", "/api-keys", "/tablets"])):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/login")
            page.fill("#email", who)
            page.fill("#password", "demo-password-2026")
            page.click("button[type=submit]")
            for path in pages:
                page.goto(base + path)
                page.screenshot(path=str(out / f"{who.split('@')[0]}{path.replace('/', '_')}.png"), full_page=True)
            page.close()
        tablet = browser.new_page(viewport={"width": 768, "height": 1024})
        tablet.goto(link)
        tablet.click("button[type=submit]")
        tablet.screenshot(path=str(out / "tablet_picker.png"))
        tablet.click("text=Sari Wulandari")
        for key in "1234":
            tablet.click(f"[data-key='{key}']")
        tablet.screenshot(path=str(out / "tablet_pin.png"))
        tablet.click(".keypad button[type=submit]")
        tablet.screenshot(path=str(out / "tablet_home.png"))
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), Path(sys.argv[2]))
