"""The Now screen stays light for a clinic's Wi-Fi: document and every asset, empty cache, at most 150 KB — the
service worker (its script and what it keeps at install) counted in."""
import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

BUDGET = 150 * 1024


def test_now_screen_weighs_at_most_150_kb_with_an_empty_cache(tablet, new_page, capsys):
    signed_in = tablet()  # enrolled as the Jakarta tablet, Sari signed in; its cache is full by now ...
    page = new_page(storage_state=signed_in.context.storage_state())  # ... so: the same cookies, an empty cache
    responses = []
    page.context.on("response", lambda response: responses.append(response))  # the page's and its worker's
    page.goto("/tablet/home")
    page.wait_for_load_state("networkidle")  # the htmx parts loaded after the page too
    page.evaluate("() => navigator.serviceWorker.ready")  # installed: what it keeps at install is fetched
    page.wait_for_load_state("networkidle")

    rows = []
    for response in responses:
        try:
            body = b"" if 300 <= response.status < 400 else response.body()
        except Exception as exc:
            raise AssertionError(f"no body for {response.status} {response.url}: {exc}") from None
        sizes = response.request.sizes()
        # The worker's own fetches give no body to Playwright: count what came over the wire for them.
        size = len(body) or sizes["responseBodySize"]
        rows.append((response.status, size, sizes["responseHeadersSize"], response.url.split("/", 3)[-1]))
    total = sum(r[1] for r in rows)
    with_headers = total + sum(r[2] for r in rows)
    report = "\n".join(f"{status} {size:>8} B  /{path}" for status, size, _, path in rows)
    (ARTIFACTS / "page-weight-now.txt").write_text(f"{report}\n{total} B bodies, {with_headers} B with headers\n")
    with capsys.disabled():
        print(f"\n[page weight] Now screen, empty cache: {len(rows)} responses, {total} B ({total / 1024:.1f} KB) "
              f"of bodies, {with_headers / 1024:.1f} KB with headers; budget {BUDGET // 1024} KB")
    assert all(status < 400 for status, *_ in rows), report
    assert any(path.endswith(".css") for *_, path in rows), "the cache was not empty:\n" + report
    assert any(path.startswith("sw.js") for *_, path in rows), "the service worker was not fetched:\n" + report
    assert total <= BUDGET, f"the Now screen weighs {total} B > {BUDGET} B:\n{report}"
