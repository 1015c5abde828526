"""Round eighteen (A), a confirmation probe of issue 24's classes: rows of docs/what-survives-what.md drawn at
random, each tried as it says and in a variant it does not name. Each test reproduced a defect first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from srunit.config import load_config
from srunit.datasets.split import split_folders
from srunit.engine.trainer import check_no_void_options
from srunit.errors import ConfigError, DataError


def test_a_yaml_false_where_a_name_belongs_advises_quoting_the_word_off(tmp_path: Path) -> None:
    """`runs_dir: off` in a YAML preset: the message advised `quote the word ('on')`, a word the user never wrote;
    following it would have named the runs folder `on`."""
    preset = tmp_path / "off.yaml"
    preset.write_text("base: cut\ntrain:\n  runs_dir: off\n")
    with pytest.raises(ConfigError, match=r"train\.runs_dir: got the boolean false.*quote the word \('off'\)"):
        load_config(str(preset), [])
    preset.write_text("base: cut\ntrain:\n  name: on\n")  # the row itself, unchanged
    with pytest.raises(ConfigError, match=r"train\.name: got the boolean true.*quote the word \('on'\)"):
        load_config(str(preset), [])


@pytest.mark.parametrize("preset, overrides, void", [
    ("cut", ["method.lambda_nce=0", "method.num_patches=64"], True),
    ("cut", ["method.lambda_nce=0", "method.robust.weight=1e-4", "method.num_patches=64"], False),  # the term reads
    ("srunit", ["method.lambda_nce=0", "method.num_patches=64"], False),  # SRUNIT's robustness term samples them
    ("srunit", ["method.lambda_nce=0", "method.robust.weight=0", "method.num_patches=64"], True),
    ("cut", ["method.lambda_nce=1", "method.num_patches=64"], False),
])
def test_num_patches_without_patchnce_or_a_term_that_samples_them_is_void(preset: str, overrides: list[str],
                                                                         void: bool) -> None:
    """`--method.lambda_nce 0 --method.num_patches 64` (CUT): nce_temperature and nce_negatives were refused as
    void, num_patches was taken without a word though nothing sampled patches."""
    config = load_config(preset, overrides)
    if void:
        with pytest.raises(ConfigError, match=r"method\.num_patches 64 has no effect: method\.lambda_nce is 0 and "
                                              r"no added loss term acts"):
            check_no_void_options(config, overrides)
    else:
        check_no_void_options(config, overrides)


def test_a_maps_split_names_images_a_when_it_is_the_histogram_folder(tmp_path: Path) -> None:
    """`data split --mode maps --images-a FIFO` (no --labels): the error named `--labels path` and advised
    `pass --labels DIR`, an option the user had not given."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"--images-a path .*fifo is a FIFO") as err:
        split_folders(tmp_path / "out", images_a=fifo, images_b=tmp_path / "b", mode="maps")
    assert "--labels" not in str(err.value)


def test_a_benchmark_refuses_a_method_named_twice() -> None:
    """`BenchSettings(methods=("cut", "cut"))` for `run_benchmark` (the command line keeps each method once): two
    presets of one name were refused (round seven), one preset named twice was taken: every run of it was listed
    twice, so its row counted each seed twice (n doubled, the interval narrowed), and with ``jobs=2`` two jobs
    trained the same run folder."""
    from srunit.synthscapes.settings import BenchSettings

    with pytest.raises(ConfigError, match=r"--methods names 'cut' 2 times; give each method once"):
        BenchSettings(methods=("cut", "srunit", "cut"))
    assert BenchSettings(methods=("cut", "srunit")).methods == ("cut", "srunit")
