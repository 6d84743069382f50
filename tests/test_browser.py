"""Open every page of the built book in a real browser, with no network, as a reader would.

Debian's Chromium (``/usr/bin/chromium``, or ``$CHROMIUM``), driven by playwright-core
from ``node_modules`` (``make browser-tools`` installs both; ``make test`` runs it first),
loads each page of the book that ``built_book`` (tests/conftest.py) built once for the
whole session, served on localhost. Any request to another host is blocked and reported.
The tests assert that MathJax, served by the book itself, typeset every equation, that no
code or output of a chapter is wider than its box, that
every image loaded, that no page shows a Python traceback, and that each chapter offers
its notebook for download. A full-page screenshot of each page is kept in
``_build/screenshots/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, machine_seconds

pytestmark = pytest.mark.slow

SCREENSHOTS = ROOT / "_build" / "screenshots"
CHECKER = Path(__file__).parent / "browser" / "check_pages.mjs"
CHAPTERS = ["book/partial-pooling.html", "book/crossed-clusters.html", "book/trolley.html"]
FIGURES = {"book/partial-pooling.html": 4, "book/crossed-clusters.html": 6, "book/trolley.html": 4}


def chromium() -> str:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        pytest.fail(f"Chromium not found at {path}: run `make browser-tools` (installs Debian's chromium) "
                    "or set CHROMIUM to a Chromium binary")
    return path


def pages(html: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root."""
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html") if "_static" not in p.parts)


@pytest.fixture(scope="module")
def site(built_book):
    """The built HTML served on a free localhost port: ``(base URL, html folder)``."""
    html = built_book / "html"
    handler = functools.partial(Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", html
    server.shutdown()
    server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def report(site):
    """What the browser saw on each page (see tests/browser/check_pages.mjs)."""
    base, html = site
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.fail("node or playwright-core is missing: run `make browser-tools` (npm ci from package-lock.json)")
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    options = {"baseUrl": base, "pages": pages(html), "screenshots": str(SCREENSHOTS), "chromium": chromium()}
    result = subprocess.run([node, str(CHECKER), json.dumps(options)], check=False, capture_output=True, text=True,
                            timeout=machine_seconds(600), cwd=ROOT)
    assert result.returncode == 0, f"the browser check failed:\n{result.stderr[-4000:]}"
    return {facts["page"]: facts for facts in json.loads(result.stdout)["pages"]}


def test_every_page_of_the_book_was_opened(report, site):
    _, html = site
    assert set(report) == set(pages(html))
    assert {"index.html", "book/intro.html", "book/references.html", *CHAPTERS} <= set(report)


# The theme's own note on a reader's first visit (no colour mode stored yet), not an error.
HARMLESS_CONSOLE = ("Got invalid theme mode: . Resetting to auto.",)


def test_pages_load_with_no_network_and_no_errors(report):
    for facts in report.values():
        facts["consoleErrors"] = [m for m in facts["consoleErrors"] if m not in HARMLESS_CONSOLE]
    problems = {
        name: {key: facts[key] for key in ("external", "failed", "httpErrors", "consoleErrors", "pageErrors")
               if facts[key]}
        for name, facts in report.items()
    }
    assert all(facts["status"] == 200 for facts in report.values()), {n: f["status"] for n, f in report.items()}
    assert not {name: p for name, p in problems.items() if p}


def math_in_source(html: Path, page: str) -> int:
    """How many math elements Sphinx wrote into the page (before any JavaScript ran)."""
    return len(re.findall(r'<(?:span|div) class="math notranslate nohighlight"', (html / page).read_text()))


def test_mathjax_from_the_site_typesets_every_equation(report, site):
    _, html = site
    typeset_pages = 0
    for name, facts in report.items():
        expected = math_in_source(html, name)
        assert facts["math"] == expected, (name, facts["math"], expected)
        if not expected:
            continue
        typeset_pages += 1
        assert facts["mathjax"], f"{name}: MathJax did not load ({facts['mathjaxScripts']})"
        assert facts["mathjaxVersion"] == "3.2.2", name
        assert all(src.startswith(site[0]) and "/_static/mathjax/" in src for src in facts["mathjaxScripts"]), name
        assert facts["typeset"] == expected and not facts["untypeset"], (name, facts["untypeset"])
        assert facts["mjxContainers"] >= expected, name
        assert not facts["mathErrors"], (name, facts["mathErrors"])
    assert typeset_pages >= len(CHAPTERS)  # every chapter has equations


def test_every_image_loaded(report):
    for name, facts in report.items():
        broken = [img["src"] for img in facts["images"] if not img["complete"] or img["naturalWidth"] == 0]
        assert not broken, (name, broken)
    for name, count in FIGURES.items():
        figures = [img for img in report[name]["images"] if img["src"].endswith(".png")]
        assert len(figures) == count, (name, [img["src"] for img in figures])
        assert all(img["naturalWidth"] >= 400 for img in figures), name  # a real figure, not an icon


def test_code_and_outputs_fit_the_page(report):
    """No code cell, output or code block of a chapter is wider than its box at the
    default width (1280 px): nothing to scroll sideways."""
    wide = {name: report[name]["overflowing"] for name in CHAPTERS if report[name]["overflowing"]}
    assert not wide, wide


def test_no_page_shows_a_python_traceback(report):
    assert not {name: facts["traceback"] for name, facts in report.items() if facts["traceback"]}
    assert not {name: facts["errorOutputs"] for name, facts in report.items() if facts["errorOutputs"]}


def test_each_chapter_offers_its_executed_notebook(report, site):
    base, _ = site
    for name in CHAPTERS:
        link = report[name]["notebookLink"]
        assert link and link.endswith(name.replace(".html", ".ipynb")), (name, link)
        with urllib.request.urlopen(base + name.rsplit("/", 1)[0] + "/" + link) as response:
            notebook = nbformat.reads(response.read().decode(), as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(cell.execution_count for cell in code), name  # executed, every cell
        pictures = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
        assert pictures >= FIGURES[name], name
        source = (ROOT / name.replace(".html", ".md")).read_text()
        assert len(code) == source.count("```{code-cell}"), name  # the whole chapter


def test_screenshots_of_every_page_are_kept(report):
    for name, facts in report.items():
        shot = Path(facts["screenshot"])
        assert shot.parent == SCREENSHOTS
        head = shot.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", name
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert width == 1280 and height >= min(facts["height"], 900), (name, width, height)


class Assets(HTMLParser):
    """The scripts and stylesheets a page loads."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        elif tag == "link" and attrs.get("href") and {"stylesheet", "preload", "modulepreload", "icon"} & set(
            (attrs.get("rel") or "").split()
        ):
            self.urls.append(attrs["href"])


def test_no_page_loads_scripts_or_styles_from_another_site(site):
    _, html = site
    remote, loaded = {}, 0
    for page in pages(html):
        parser = Assets()
        parser.feed((html / page).read_text())
        loaded += len(parser.urls)
        remote.update({page: urls} if (urls := [u for u in parser.urls if re.match(r"(https?:)?//", u)]) else {})
    assert loaded > 10 * len(pages(html)) // 2  # the parser does see the pages' scripts and styles
    assert not remote
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert list((html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
