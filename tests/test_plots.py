"""The one figure the course draws itself: bars per response category."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest


def test_category_bars_panels_and_heights():
    from course_utils.plots import plot_category_bars

    table = pd.DataFrame({
        "action": np.repeat([0, 1], 6), "intention": np.tile(np.repeat([0, 1], 3), 2),
        ".category": np.tile([1, 2, 3], 4), ".epred": np.arange(12) / 12,
    })
    fig, axs = plot_category_bars(table, row="action", hue="intention")
    assert axs.shape == (2, 1)
    assert [p.get_height() for p in axs[1, 0].patches] == pytest.approx(np.arange(6, 12) / 12)
    assert axs[1, 0].get_title() == "action = 1"
    plt.close(fig)
