"""The lecture's models are defined once (course_utils/models) and shown by the chapters."""

from __future__ import annotations

import re
from pathlib import Path

import bambi as bmb
import pymc as pm
import pytest

from course_utils.models import LECTURE, build, prepared, settings
from conftest import needs_data

BOOK = Path(__file__).resolve().parent.parent / "book"
LOADED = re.compile(r"^:load: \.\./course_utils/models/(\w+)\.py$", re.M)


def test_each_model_is_shown_by_exactly_one_chapter_and_written_nowhere_else():
    shown = {}
    for chapter in sorted(BOOK.glob("*.md")):
        text = chapter.read_text()
        for name in LOADED.findall(text):
            shown.setdefault(name, []).append(chapter.name)
        # The chapters build models with the modules' functions, not with models of their own.
        assert "bmb.Model(" not in text and "pm.Model(" not in text, chapter.name
    assert {name: len(chapters) for name, chapters in shown.items()} == dict.fromkeys(LECTURE, 1)


def test_settings_are_a_copy_with_a_seed():
    for name in LECTURE:
        options = settings(name)
        assert isinstance(options["random_seed"], int) and options["draws"] >= 1000 and options["chains"] == 4
        draws, options["draws"] = options["draws"], 1
        assert settings(name)["draws"] == draws


@needs_data
@pytest.mark.parametrize("name", list(LECTURE))
def test_each_model_builds_on_its_prepared_data(name):
    data = prepared(LECTURE[name])
    model = build(name, data)
    if name == "m3":
        assert isinstance(model, pm.Model)
        assert sorted(model.coords["treatment"]) == ["1", "2", "3", "4"]
        assert [rv.name for rv in model.observed_RVs] == ["pulled_left"]
    else:
        assert isinstance(model, bmb.Model)
        assert len(model.data) == len(data)
    if LECTURE[name] == "trolley":
        assert model.family.name == "cumulative" and data["response"].cat.ordered
