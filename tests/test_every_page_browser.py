"""End to end, as a first visitor: every page of `streamlit run app.py` opened by its own URL in a
fresh browser context (no cookies, no session, no cache) of headless Debian Chromium.

For each page: its title renders, Streamlit says no "Page not found", no exception box shows, and
the browser asks no host but the app's own (127.0.0.1) for anything: documents, scripts, fonts,
icons, images, XHR, WebSockets, the component iframes' content. Requests to any other host are
also aborted, so a missed one cannot slip through on a machine that happens to be online.

The pages are read from the app's own navigation (the sidebar's links), so a page added to app.py
is checked without editing this file; the home page is also opened at ``/cifar100``.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from e2e_support import chromium_page, streamlit_server, wait_for_streamlit

# Pages this project ships, by URL path (the home page answers at "/" and at "/cifar100").
KNOWN_PAGES = {"": "CIFAR-100", "cifar100": "CIFAR-100", "classify": "Classify your photos",
               "augment": "Augmentation previews", "webcam": "Webcam", "train": "Train a classifier"}
LOOPBACK = {"127.0.0.1"}
SETTLE_MS = 2_500  # after the script run: late requests (favicon, component iframes, images)


def first_visit_env(tmp_path) -> dict[str, str]:
    """A machine as a newcomer's: no user models, no ../shared, no Keras cache, fresh HOME."""
    return {"CVPLAY_MODELS": str(tmp_path / "no-user-models"), "CVPLAY_SHARED": str(tmp_path / "no-shared"),
            "CVPLAY_CIFAR100": "", "KERAS_HOME": str(tmp_path / "no-keras"), "HOME": str(tmp_path)}


def navigation_links(page) -> list[tuple[str, str]]:
    """(title, URL path) of every page in the sidebar navigation."""
    page.locator('[data-testid="stSidebarNav"] a').first.wait_for(timeout=60_000)
    links = page.locator('[data-testid="stSidebarNav"] a').evaluate_all(
        "links => links.map(a => [a.querySelector('[data-testid=\"stMarkdownContainer\"]').textContent, a.getAttribute('href')])"
    )
    return [(title.strip(), urlparse(href).path.strip("/")) for title, href in links]


class OutsideRequests:
    """Every request of a browser context whose host is not the app's; each one is aborted."""

    def __init__(self, context):
        self.urls: list[str] = []
        context.route("**/*", self._route)
        context.on("request", self._seen)

    def _outside(self, url: str) -> bool:
        parsed = urlparse(url)
        return parsed.scheme not in ("data", "blob", "about") and parsed.hostname not in LOOPBACK

    def _seen(self, request) -> None:
        if self._outside(request.url) and request.url not in self.urls:
            self.urls.append(request.url)

    def _route(self, route) -> None:
        if self._outside(route.request.url):
            route.abort()
        else:
            route.continue_()

    def watch_websockets(self, page) -> None:
        page.on("websocket", lambda socket: self._seen_socket(socket.url))

    def _seen_socket(self, url: str) -> None:
        if urlparse(url).hostname not in LOOPBACK:
            self.urls.append(url)


def open_first_visit(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside = OutsideRequests(context)
    page = context.new_page()
    outside.watch_websockets(page)
    page.goto(url)
    wait_for_streamlit(page)
    page.wait_for_timeout(SETTLE_MS)
    return context, page, outside


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_opens_from_its_own_url_and_asks_no_other_host(tmp_path):
    with streamlit_server("app.py", env=first_visit_env(tmp_path)) as server, chromium_page() as first_page:
        browser = first_page.context.browser
        first_page.goto(server.url + "/")
        wait_for_streamlit(first_page)
        links = navigation_links(first_page)
        titles = dict((path, title) for title, path in links)
        for path, title in KNOWN_PAGES.items():
            if path != "cifar100":
                assert titles.get(path) == title, f"the sidebar should list {title!r} at /{path}: {links}"
        titles["cifar100"] = KNOWN_PAGES["cifar100"]

        problems = []
        for path, title in titles.items():
            context, page, outside = open_first_visit(browser, f"{server.url}/{path}")
            try:
                heading = page.locator("h1").first
                heading.wait_for(timeout=30_000)
                current = page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]')
                checks = {
                    "a title (h1)": heading.inner_text().strip() != "",
                    f"{title!r} as the current page in the sidebar": current.count() == 1 and current.get_by_text(title, exact=True).count() == 1,
                    'no "Page not found"': page.get_by_text("Page not found").count() == 0,
                    "no exception box": page.locator('[data-testid="stException"]').count() == 0,
                    f"no request to another host ({outside.urls})": not outside.urls,
                }
                problems += [f"/{path}: expected {what}" for what, ok in checks.items() if not ok]
            finally:
                context.close()
        assert not problems, "\n".join(problems) + "\n" + server.log()[-3000:]


@pytest.mark.browser
@pytest.mark.slow
def test_augmentation_previews_are_large_and_the_page_stays_short(tmp_path):
    """Issue 12: samples were thumbnails and drawn parameters broke mid-word in narrow columns,
    growing the page to about 3,800 px. At a 1280x900 window with parameters shown: samples at
    least 180 px wide (was about 100), the parameters in one table, the page under 2,400 px."""
    with streamlit_server("app.py", env=first_visit_env(tmp_path)) as server, chromium_page() as page:
        page.goto(server.url + "/augment")
        wait_for_streamlit(page)
        page.get_by_text("Show drawn parameters").first.click()
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
        wait_for_streamlit(page)
        page.wait_for_timeout(1_000)
        widths = page.locator('[data-testid="stImage"] img').evaluate_all("images => images.map(i => i.getBoundingClientRect().width)")
        height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        print(f"sample widths {sorted(widths)[:3]}... px, page height {height} px")
        assert len(widths) == 9 and min(widths) >= 180, widths
        assert page.locator('[data-testid="stCode"]').count() <= 1  # only the (collapsed) policy JSON
        assert height < 2_400, height
        assert page.locator('[data-testid="stException"]').count() == 0
