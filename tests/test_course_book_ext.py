"""The book's Sphinx extension (_ext/course_book.py), on its own: the whole book is
checked in test_book.py and test_browser.py."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from sphinx.builders.html._assets import _JavaScript
from sphinx.errors import ExtensionError

from conftest import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import course_book  # noqa: E402


def test_missing_mathjax_says_how_to_install_it(tmp_path):
    with pytest.raises(ExtensionError, match=r"MathJax is not installed .* Run `npm ci` in"):
        course_book.mathjax_source(tmp_path)


def test_a_remote_mathjax_path_is_refused(tmp_path):
    app = SimpleNamespace(builder=SimpleNamespace(format="html"), confdir=tmp_path,
                          config=SimpleNamespace(mathjax_path="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"))
    with pytest.raises(ExtensionError, match="a remote address"):
        course_book.check_mathjax(app)


def test_each_script_is_listed_once():
    body = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript(None, body=body), _JavaScript("_static/a.js"), _JavaScript("", body=body),
               _JavaScript("_static/a.js", priority=200), _JavaScript("_static/b.js", defer="defer")]
    context = {"script_files": scripts}
    course_book.unique_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts  # changed in place
    assert [(s.filename, s.attributes) for s in scripts] == [
        (None, {"body": body}), ("_static/a.js", {}), ("_static/b.js", {"defer": "defer"}),
    ]
