"""The built HTML book in a real browser: Debian's headless Chromium, driven by Playwright.

`make test-book` builds the book (`make book`) and then runs this file; the tool
tests (`--framework none`) leave it out because it needs the built book. The
pages are served from a local HTTP server on 127.0.0.1, so the browser sees the
book as a reader does: scripts, the style sheets, MathJax, the figures.

Screenshots of each chapter with the TensorFlow tabs selected are saved as
book/_build/screenshot-tensorflow-<chapter>.png, and of the DCGAN's training
figure and samples in every tab as book/_build/screenshot-dcgan-<framework>.png.
"""
import functools
import http.server
import json
import os
import threading
from pathlib import Path

import pytest

import d2l_shim
from tools.build_book import book_chapters

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOK_BUILD = REPO_ROOT / "book" / "_build"
BOOK_HTML = BOOK_BUILD / "html"
CHAPTER_ORDER = REPO_ROOT / "book" / "chapters.txt"
#: The browser `make test-book` found or installed (see the Makefile).
CHROMIUM = Path(os.environ.get("BOOK_BROWSER", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TAB_LABELS = [row.label for row in d2l_shim.TABLE]
FRAMEWORK_IDS = list(d2l_shim.FRAMEWORKS)
#: The DCGAN's training figure must be shown at least this wide (CSS pixels) to be judged.
TRAINING_FIGURE_MIN_WIDTH = 600
#: Code that gives away another framework in a TensorFlow tab (comments may name them).
FOREIGN_CODE = ("import torch", "torch.", "nn.Module", "from mxnet", "npx.", "gluon.",
                "import jax", "jnp.", "nnx.")

# One JavaScript query for the state of every framework tab set on the page.
TAB_STATE_JS = """
() => Array.from(document.querySelectorAll('.book-framework-tabs')).map(set => {
  const labels = Array.from(set.querySelectorAll(':scope > label.sd-tab-label'));
  const checked = set.querySelector(':scope > input:checked');
  const checkedLabel = checked ? checked.nextElementSibling.textContent.trim() : null;
  const visible = Array.from(set.querySelectorAll(':scope > .sd-tab-content'))
      .filter(panel => panel.checkVisibility());
  const cells = visible.flatMap(panel => Array.from(panel.querySelectorAll('.book-tab-cell')));
  return {
    labels: labels.map(label => label.textContent.trim()),
    syncIds: labels.map(label => label.dataset.syncId),
    checked: checkedLabel,
    visiblePanels: visible.length,
    cellClasses: cells.map(cell => Array.from(cell.classList)),
    code: cells.map(cell => cell.querySelector('.cell_input pre').innerText),
    noCode: visible.flatMap(panel => Array.from(panel.querySelectorAll('.book-no-code')))
        .map(note => note.className),
  };
})
"""

IMAGES_JS = """
() => Array.from(document.images).map(img => ({
  src: img.getAttribute('src'), alt: img.getAttribute('alt'),
  complete: img.complete, width: img.naturalWidth,
}))
"""


def chapters_in_book():
    """The chapter pages the book should have, in order: listed in book/chapters.txt and written."""
    return book_chapters(CHAPTER_ORDER, REPO_ROOT / "chapters")


@pytest.fixture(scope="session")
def notebook_code(request):
    """The code cell sources of a chapter's executed notebook for one framework."""
    folder = Path(request.config.getoption("--notebooks"))

    def code(chapter, framework):
        path = folder / framework / f"{chapter}.ipynb"
        notebook = json.loads(path.read_text(encoding="utf-8"))
        return ["".join(cell["source"]).strip() for cell in notebook["cells"]
                if cell["cell_type"] == "code"]
    return code


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the book without logging every request to the test output."""

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def book_url():
    """Serve book/_build/html on 127.0.0.1 (a free port) for the session; yield its base URL."""
    if not (BOOK_HTML / "index.html").exists():
        pytest.skip("the book is not built: run `make book` (make test-book does)")
    handler = functools.partial(_QuietHandler, directory=str(BOOK_HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, started by Playwright (never a browser Playwright downloads)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test-book`, which finds or installs a "
                    "Chromium, or set BOOK_BROWSER=/path/to/chrome", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageProblems:
    """Console errors, uncaught exceptions and failed requests of every page of a context."""

    def __init__(self):
        self.messages = []

    def watch(self, page):
        """Record the problems of one page."""
        page.on("console", lambda message: message.type == "error" and self.messages.append(
            f"console error on {page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.messages.append(f"exception on {page.url}: {error}"))
        page.on("requestfailed", lambda request: self.messages.append(
            f"request failed: {request.url} ({request.failure})"))
        page.on("response", lambda response: response.status >= 400 and self.messages.append(
            f"HTTP {response.status}: {response.url}"))
        return page


@pytest.fixture
def reader(browser):
    """A fresh browser profile (empty localStorage) and the record of its pages' problems."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems = PageProblems()
    context.on("page", problems.watch)
    try:
        yield context, problems
    finally:
        context.close()


def open_page(context, url):
    """Open a URL in a new tab and wait until its scripts and MathJax are done."""
    page = context.new_page()
    page.goto(url, wait_until="load")
    wait_for_mathjax(page)
    return page


def wait_for_mathjax(page):
    """Wait for MathJax to typeset the page, if the page loads it."""
    page.wait_for_function(
        "() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)"
    )
    page.evaluate("() => window.MathJax ? window.MathJax.startup.promise : null")


def tab_sets(page):
    """The state of every framework tab set of a page (see TAB_STATE_JS)."""
    return page.evaluate(TAB_STATE_JS)


def assert_all_show(page, label):
    """Every tab set of the page shows the tab ``label``, and only that tab."""
    states = tab_sets(page)
    assert states, f"{page.url} has no framework tab set"
    for number, state in enumerate(states, 1):
        assert state["checked"] == label, f"tab set {number} of {page.url} shows {state['checked']}"
        assert state["visiblePanels"] == 1, (
            f"tab set {number} of {page.url} shows {state['visiblePanels']} panels")
    return states


def test_front_page_lists_the_chapters_in_order(reader, book_url):
    context, problems = reader
    page = open_page(context, book_url)
    links = page.eval_on_selector_all(
        ".bd-content .toctree-wrapper a.reference.internal", "links => links.map(a => a.getAttribute('href'))"
    )
    chapters = chapters_in_book()
    assert [link.split("#")[0] for link in links if "#" not in link] == [f"{name}.html" for name in chapters]
    assert problems.messages == []


@pytest.mark.parametrize("chapter", chapters_in_book())
def test_framework_tabs_switch_together_and_persist(reader, book_url, chapter, notebook_code):
    context, problems = reader
    page = open_page(context, f"{book_url}{chapter}.html")

    states = assert_all_show(page, "PyTorch")  # what a first-time reader sees
    for number, state in enumerate(states, 1):
        assert state["labels"] == TAB_LABELS, f"tab set {number}"
        assert state["syncIds"] == FRAMEWORK_IDS, f"tab set {number}"

    page.locator(".book-framework-tabs").first.locator("label.sd-tab-label", has_text="TensorFlow").click()
    states = assert_all_show(page, "TensorFlow")
    tensorflow_code = notebook_code(chapter, "tensorflow")
    for number, state in enumerate(states, 1):
        assert state["code"] or state["noCode"], f"tab set {number} shows nothing"
        for classes, code in zip(state["cellClasses"], state["code"]):
            assert "framework-tensorflow" in classes, f"tab set {number} shows a cell of {classes}"
            assert code.strip() in tensorflow_code, (
                f"tab set {number} shows code the TensorFlow notebook lacks:\n{code}")
            assert not any(word in code for word in FOREIGN_CODE), f"tab set {number}:\n{code}"
    assert any("tf." in code for state in states for code in state["code"])

    BOOK_BUILD.mkdir(parents=True, exist_ok=True)
    # From the top, with nothing focused: the theme's sticky header and its
    # "skip to content" link would otherwise be drawn in the middle of the shot.
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    page.screenshot(path=str(BOOK_BUILD / f"screenshot-tensorflow-{chapter}.png"), full_page=True)

    page.reload(wait_until="load")
    assert_all_show(page, "TensorFlow")
    for other in chapters_in_book():  # a new visit to any chapter, in the same browser profile
        assert_all_show(open_page(context, f"{book_url}{other}.html"), "TensorFlow")
    assert problems.messages == []


@pytest.mark.parametrize("chapter", chapters_in_book())
def test_figures_load_and_have_alt_text(reader, book_url, chapter):
    context, problems = reader
    page = open_page(context, f"{book_url}{chapter}.html")
    images = page.evaluate(IMAGES_JS)
    figures = [image for image in images if "_images/" in (image["src"] or "")]
    assert figures, "the page shows no figure"
    for image in images:
        assert image["complete"] and image["width"] > 0, f"image did not load: {image['src']}"
    for figure in figures:
        assert figure["alt"] and figure["alt"].startswith("Figure output of"), figure
    assert problems.messages == []


@pytest.mark.parametrize("chapter", chapters_in_book())
def test_math_is_typeset(reader, book_url, chapter):
    context, problems = reader
    page = open_page(context, f"{book_url}{chapter}.html")
    assert page.locator("mjx-container").count() > 0, "MathJax typeset nothing"
    assert page.locator("mjx-merror").count() == 0, "MathJax reports a TeX error"
    assert page.locator("script[src*='mathjax']").first.get_attribute("src").startswith("_static/")
    assert problems.messages == []


@pytest.mark.parametrize("chapter", chapters_in_book())
def test_page_offers_every_frameworks_notebook(reader, book_url, chapter):
    context, problems = reader
    page = open_page(context, f"{book_url}{chapter}.html")
    note = page.locator(".book-downloads")
    assert "GPU" in note.inner_text()
    links = note.locator("a.download")
    assert links.all_inner_texts() == TAB_LABELS
    for link, framework in zip(links.all(), FRAMEWORK_IDS):
        response = page.request.get(page.url.rsplit("/", 1)[0] + "/" + link.get_attribute("href"))
        assert response.ok
        notebook = response.json()
        assert notebook["metadata"]["kernelspec"]["name"] == framework
        assert any(cell.get("outputs") for cell in notebook["cells"]), "the notebook has no outputs"
    assert problems.messages == []


def test_no_asset_comes_from_another_host(reader, book_url):
    """Every script, style sheet and font is served by the book itself (no CDN)."""
    context, _problems = reader
    requested = []
    context.on("request", lambda request: requested.append(request.url))
    for chapter in ["index", *chapters_in_book()]:
        open_page(context, f"{book_url}{chapter}.html")
    foreign = [url for url in requested if not url.startswith(book_url)]
    assert foreign == []



@pytest.mark.parametrize("framework", FRAMEWORK_IDS)
def test_dcgan_training_figure_in_every_tab(reader, book_url, framework):
    """Each tab shows its own run: the losses, SWD and samples figure, wide
    enough to judge, then the held-out images beside new samples; both are
    saved as one screenshot per framework."""
    context, problems = reader
    page = open_page(context, f"{book_url}dcgan.html")
    label = TAB_LABELS[FRAMEWORK_IDS.index(framework)]
    page.locator(".book-framework-tabs").first.locator("label.sd-tab-label", has_text=label).click()
    assert_all_show(page, label)
    cells = page.locator(f".book-tab-cell.framework-{framework}:visible").filter(has_text="run = train(")
    assert cells.count() == 1, f"the {label} tab shows {cells.count()} training cells"
    figure = cells.first.locator(".cell_output img")
    assert figure.count() == 1, f"the {label} training cell shows {figure.count()} figures"
    assert figure.first.bounding_box()["width"] >= TRAINING_FIGURE_MIN_WIDTH
    summary = page.locator(f".book-tab-cell.framework-{framework}:visible").filter(
        has_text="run.swd_summary()")
    assert summary.count() == 1
    assert "held-out images" in summary.first.locator(".cell_output").inner_text()
    # Page coordinates: measured from the top, with nothing focused.
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    box_top, box_bottom = cells.first.bounding_box(), summary.first.bounding_box()
    BOOK_BUILD.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(BOOK_BUILD / f"screenshot-dcgan-{framework}.png"), full_page=True,
                    clip={"x": 0, "y": box_top["y"] - 40, "width": 1280,
                          "height": box_bottom["y"] + box_bottom["height"] - box_top["y"] + 80})
    assert problems.messages == []


@pytest.mark.parametrize("chapter", chapters_in_book())
def test_no_code_or_output_scrolls_sideways(reader, book_url, chapter):
    """At a 1280-pixel window every code line and printed line fits its column,
    in every tab (hidden tabs are shown one framework at a time)."""
    context, _problems = reader
    page = open_page(context, f"{book_url}{chapter}.html")
    for label in TAB_LABELS:
        page.locator(".book-framework-tabs").first.locator(
            "label.sd-tab-label", has_text=label).click()
        too_wide = page.evaluate("""() => Array.from(document.querySelectorAll('.bd-content pre'))
            .filter(pre => pre.checkVisibility() && pre.scrollWidth > pre.clientWidth + 1)
            .map(pre => pre.innerText.split('\\n').reduce((a, b) => a.length >= b.length ? a : b))""")
        assert too_wide == [], f"{label}: lines wider than the column: {too_wide}"
