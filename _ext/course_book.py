"""Sphinx extension for the course book: MathJax from the built site, notebooks to download.

- **MathJax offline.** The pages load MathJax from ``_static/mathjax/`` of the built site
  (``mathjax_path`` in ``_config.yml``), never from a CDN, so equations render in a
  firewalled lab. The files come from the npm package pinned in ``package.json`` and
  installed by ``npm ci`` into ``node_modules/`` (``make book`` and ``make test`` run it).
- **Each script once.** Jupyter Book registers some inline scripts twice (sphinx-thebe's
  ``const THEBE_JS_URL = ...``, whose second copy is a SyntaxError in every page's
  console); a page lists each script only once.
- **Notebook downloads.** Each chapter is a MyST Markdown notebook; the theme's download
  menu offers that ``.md`` file and, once this extension has written it next to the
  page's sources, the executed ``.ipynb`` (the notebook with every output, as the book
  shows it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

MATHJAX_PACKAGE = Path("node_modules") / "mathjax" / "es5"
MATHJAX_ENTRY = "tex-mml-chtml.js"
# What tex-mml-chtml.js loads: itself, then on demand the TeX extensions (input/), its
# fonts (output/chtml/), the menu (ui/) and the accessibility tools (a11y/, sre/).
MATHJAX_PARTS = (MATHJAX_ENTRY, "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre", "adaptors")


def mathjax_source(confdir: str | Path) -> Path:
    """The installed MathJax ``es5`` folder, or an error that says how to install it."""
    source = Path(confdir) / MATHJAX_PACKAGE
    if not (source / MATHJAX_ENTRY).is_file():
        raise ExtensionError(
            f"MathJax is not installed ({source / MATHJAX_ENTRY} is missing). "
            f"Run `npm ci` in {Path(confdir).resolve()} (`make book` does it): the book serves "
            "MathJax from its own pages, never from a CDN."
        )
    return source


def check_mathjax(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    if "://" in app.config.mathjax_path or app.config.mathjax_path.startswith("//"):
        raise ExtensionError(
            f"mathjax_path is {app.config.mathjax_path!r}, a remote address: set it to "
            f"'mathjax/{MATHJAX_ENTRY}' in _config.yml so pages load MathJax from the built site"
        )
    mathjax_source(app.confdir)


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source(app.confdir)
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def executed_notebook(app: Sphinx, pagename: str):
    """The page's notebook with the outputs of its execution.

    myst-nb writes the notebook it read to ``jupyter_execute/`` but, in ``cache`` mode,
    without outputs: those are in the jupyter-cache, merged here as myst-nb merges them
    to render the page.
    """
    import nbformat

    written = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not written.is_file():
        raise ExtensionError(f"no notebook for {pagename} at {written}: myst-nb should have written it")
    notebook = nbformat.read(written, as_version=4)
    config = app.env.mystnb_config
    if config.execution_mode == "cache":
        from jupyter_cache import get_cache

        try:
            _, notebook = get_cache(config.execution_cache_path).merge_match_into_notebook(notebook)
        except KeyError as err:
            raise ExtensionError(
                f"{pagename} has no executed copy in the jupyter-cache {config.execution_cache_path} ({err}); "
                "remove that folder and build again"
            ) from err
    return notebook


def offer_notebook(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Put the executed notebook of a notebook page beside its sources and tell the theme.

    Runs before the theme builds its download menu (priority 500 < 501), which then adds
    an ".ipynb" entry pointing at ``_sources/<page>.ipynb``.
    """
    if doctree is None or "kernelspec" not in app.env.metadata.get(pagename, {}):
        return
    import nbformat

    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(executed_notebook(app, pagename), target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _script_key(script) -> tuple:
    """What a script tag shows: its file or inline body and attributes. (Sphinx's own check
    lets the same inline script in twice, once with the file name None and once with "".)"""
    attributes = getattr(script, "attributes", {}) or {}
    return getattr(script, "filename", str(script)) or "", tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def unique_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated script entries (same file or inline body, same attributes)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: the builder restores its own list after the page


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", check_mathjax)
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", offer_notebook, priority=500)
    app.connect("html-page-context", unique_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
