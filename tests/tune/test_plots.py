"""The study's plots (srunit.tune.plots): what Optuna can draw from the finished trials, and nothing else said."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest
from PIL import Image

from srunit.tune.plots import PLOTS, PLOTS_DIR, write_study_plots


def _study(trials: int) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for k in range(trials):  # a float, and the layer left out of Eq. 3 as leave_one_out names it (never none here)
        values = {"method.lambda_nce": 0.5 + k, "method.robust.layers": ("4", "3")[k % 2]}
        dists = {"method.lambda_nce": optuna.distributions.FloatDistribution(0.25, 4.0, log=True),
                 "method.robust.layers": optuna.distributions.CategoricalDistribution(["none", "0", "1", "2", "3",
                                                                                     "4"])}
        study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=40.0 + 3 * k % 5))
    return study


@pytest.mark.slow  # 2 s: fANOVA and four figures; its faster relatives below draw fewer
def test_every_plot_is_a_png(tmp_path: Path) -> None:
    written = write_study_plots(_study(4), tmp_path)
    assert written == {name: f"{PLOTS_DIR}/{name}.png" for name in PLOTS}
    for relative in written.values():
        with Image.open(tmp_path / relative) as img:
            assert img.format == "PNG" and min(img.size) > 100


def test_matplotlib_says_nothing_of_the_layer_choices(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """matplotlib.category's INFO line (strings "4" and "3" plotted as categories) reached tune's log, twice."""
    with caplog.at_level(logging.INFO):
        assert sorted(write_study_plots(_study(2), tmp_path)) == ["history", "parallel", "slice"]
    assert "categorical units" not in caplog.text
    assert logging.getLogger("matplotlib.category").level == logging.NOTSET  # restored


def test_a_plot_that_needs_more_trials_is_left_out(tmp_path: Path) -> None:
    assert sorted(write_study_plots(_study(1), tmp_path)) == sorted(n for n, (_, least, _) in PLOTS.items()
                                                                     if least <= 1)
