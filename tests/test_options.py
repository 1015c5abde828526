"""srunit.checks and srunit.options: the validators every option goes through and the model/data/train sections."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from srunit.checks import PRECISIONS, check_choice, check_crop_fits, check_int, check_not_one, check_range, check_value
from srunit.errors import ConfigError
from srunit.options import CROP_MODES, PREPROCESS_MODES, DataConfig, MethodOptions, ModelConfig, TrainConfig

# ----------------------------------------------------------------------------- validators


def test_check_int_accepts_integers_and_returns_int() -> None:
    assert check_int(3, "train.steps", 0) == 3
    assert check_int(0, "seed", 0) == 0
    value = check_int(np.int64(7), "--size", 4)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("value", [0, -2, 2.0, 2.5, "3", True, np.bool_(True), None])
def test_check_int_message_names_key_minimum_value_and_fix(value: object) -> None:
    with pytest.raises(ConfigError) as e:
        check_int(value, "--num-pool", 1)
    assert str(e.value) == f"--num-pool must be an integer >= 1, got {value!r}; pass --num-pool 1 or more"


def test_check_int_fix_replaces_the_default_advice() -> None:
    with pytest.raises(ConfigError, match=re.escape("data.load_size must be an integer >= 1, got 0; "
                                                    "set --data.load_size to e.g. 286")):
        check_int(0, "data.load_size", 1, fix="set --data.load_size to e.g. 286")
    assert issubclass(ConfigError, ValueError)  # callers that catch ValueError keep working


def test_check_range_accepts_numbers_in_the_closed_interval() -> None:
    assert check_range(0, "--mix", 0.0, 100.0) == 0.0 and check_range(100, "--mix", 0.0, 100.0) == 100.0
    value = check_range(np.float32(0.25), "--other-fraction", 0.0, 1.0)
    assert value == 0.25 and type(value) is float


@pytest.mark.parametrize("value", [-0.5, 100.5, float("nan"), "50", True, None])
def test_check_range_message_names_key_bounds_and_value(value: object) -> None:
    with pytest.raises(ConfigError) as e:
        check_range(value, "--mix", 0.0, 100.0)  # type: ignore[arg-type]
    assert str(e.value) == f"--mix must be between 0 and 100, got {value!r}; pass a value in that range"


def test_check_choice_and_check_value() -> None:
    check_choice("crop", "data.preprocess", PREPROCESS_MODES)
    with pytest.raises(ConfigError) as e:
        check_choice("zoom", "data.preprocess", ("crop", "none"))
    assert str(e.value) == "data.preprocess: invalid value 'zoom'; allowed: crop, none"
    check_value(True, "k", 1, "anything")
    with pytest.raises(ConfigError, match=re.escape("train.lr: invalid value -1.0; allowed: a number > 0")):
        check_value(False, "train.lr", -1.0, "a number > 0")


@pytest.mark.parametrize("mode", ["resize_and_crop", "scale_width_and_crop"])
def test_check_crop_fits_in_the_resizing_crop_modes(mode: str) -> None:
    check_crop_fits(mode, 36, 32)
    check_crop_fits(mode, 32, 32)
    with pytest.raises(ConfigError) as e:
        check_crop_fits(mode, 100, 128)
    msg = str(e.value)
    assert "data.crop_size 128 is larger than data.load_size 100" in msg and repr(mode) in msg
    assert "data.load_size >= data.crop_size" in msg


@pytest.mark.parametrize("mode", ["crop", "scale_width", "none"])
def test_check_crop_fits_ignores_load_size_where_it_does_not_bound_the_crop(mode: str) -> None:
    check_crop_fits(mode, 100, 128)


@pytest.mark.parametrize("one", ["runs/a", b"runs/a", Path("runs/a")])
def test_check_not_one_refuses_one_path_where_a_list_belongs(one: object) -> None:
    # A str is iterable, so a list-taking function would otherwise read it as the paths "r", "u", "n", ...
    with pytest.raises(TypeError, match=r"^f: paths must be a list of run folders, got (str|bytes|\w*Path) "
                                        r"b?'runs/a'; wrap it in a list: \[b?'runs/a'\]$"):
        check_not_one(one, "f: paths", "run folders")


@pytest.mark.parametrize("many", [["runs/a"], ("runs/a", "runs/b"), [], {"train.lr": 1}])
def test_check_not_one_accepts_collections(many: object) -> None:
    check_not_one(many, "f: paths", "run folders")


def test_mode_and_precision_lists() -> None:
    assert PREPROCESS_MODES == ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
    assert CROP_MODES == {"resize_and_crop", "crop", "scale_width_and_crop"} and CROP_MODES <= set(PREPROCESS_MODES)
    assert PRECISIONS == ("fp32", "bf16", "fp16")


# ----------------------------------------------------------------------------- sections


def test_section_defaults_are_valid_and_frozen() -> None:
    model, data, train = ModelConfig(), DataConfig(), TrainConfig()
    assert (model.ngf, model.n_blocks, model.feature_layers) == (64, 9, (0, 4, 8, 12, 16))
    assert (data.load_size, data.crop_size, data.preprocess) == (286, 256, "resize_and_crop")
    assert (train.batch_size, train.lr, train.precision) == (1, 2e-4, "fp32")
    assert MethodOptions().name == ""
    with pytest.raises(AttributeError):
        train.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ModelConfig(ngf=0), "model.ngf: invalid value 0"),
        (lambda: ModelConfig(feature_layers=()), "model.feature_layers: invalid value ()"),
        (lambda: DataConfig(preprocess="zoom"), "data.preprocess: invalid value 'zoom'"),  # type: ignore[arg-type]
        (lambda: DataConfig(crop_size=3), "data.crop_size: invalid value 3; allowed: an integer >= 4"),
        (lambda: DataConfig(load_size=100, crop_size=128), "data.crop_size 128 is larger than data.load_size 100"),
        (lambda: DataConfig(num_workers=-1), "data.num_workers: invalid value -1"),
        (lambda: TrainConfig(name="a/b"), "train.name: invalid value 'a/b'"),
        (lambda: TrainConfig(epochs=0, epochs_decay=0), "train.epochs: invalid value 0"),
        (lambda: TrainConfig(decay_fraction=1.5), "train.decay_fraction: invalid value 1.5"),
        (lambda: TrainConfig(batch_size=0), "train.batch_size: invalid value 0"),
        (lambda: TrainConfig(beta1=1.0), "train.beta1: invalid value 1.0"),
        (lambda: TrainConfig(precision="fp64"), "train.precision: invalid value 'fp64'; allowed: fp32, bf16, fp16"),  # type: ignore[arg-type]
        (lambda: TrainConfig(log_every=0), "train.log_every: invalid value 0"),
    ],
)
def test_sections_reject_bad_values_naming_the_key(make, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_data_config_crops_and_domain_dirs(tmp_path: Path) -> None:
    assert DataConfig().crops and DataConfig(preprocess="crop").crops
    assert not DataConfig(preprocess="none").crops and not DataConfig(preprocess="scale_width").crops
    assert DataConfig(root=str(tmp_path)).domain_dirs() == (tmp_path / "trainA", tmp_path / "trainB")
    assert DataConfig(root=str(tmp_path), dir_b="/elsewhere").domain_dirs() == (tmp_path / "trainA", Path("/elsewhere"))
    assert DataConfig(dir_a="x", dir_b="y").domain_dirs() == (Path("x"), Path("y"))
    with pytest.raises(ConfigError, match="no training data given: set data.root"):
        DataConfig(dir_a="x").domain_dirs()


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "../x", "/abs", "a\\b", "..\\x", "a\x00b"])
def test_run_names_that_would_leave_or_replace_the_runs_folder_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"train.name: invalid value .*; allowed: a folder name"):
        TrainConfig(name=name)


@pytest.mark.parametrize("name", ["a\nb", "a\tb", "a\x7fb", "run\u202egnp.exe", "a\u2066b", "a\u200fb"])
def test_run_names_that_show_as_other_text_are_refused(name: str) -> None:
    """A newline breaks every log line and listing that names the run; a bidirectional control shows
    "run<U+202E>gnp.exe" as "runexe.png"."""
    with pytest.raises(ConfigError, match=r"train.name: invalid value .*; allowed: a folder name: .* control "
                                          r"characters \(NUL, newline\) or bidirectional controls"):
        TrainConfig(name=name)


def test_run_names_too_long_for_a_file_system_are_refused_before_any_folder_is_made() -> None:
    """A 300-character train.name passed --dry-run and failed at mkdir after creating train.runs_dir."""
    assert TrainConfig(name="é" * 115).name == "é" * 115  # 230 bytes
    with pytest.raises(ConfigError, match=r"train.name: .* at most 230 bytes .* this one has 300"):
        TrainConfig(name="x" * 300)


@pytest.mark.parametrize("name", ["l2p", "a.b", "run-1_x", ".hidden", "...", "a b", "日本", "👨\u200d👩"])
def test_ordinary_run_names_are_accepted(name: str) -> None:
    assert TrainConfig(name=name).name == name


def _option_classes() -> list[type]:
    from srunit.registry import METHODS, TERMS

    classes: list[type] = [ModelConfig, DataConfig, TrainConfig]
    classes += [METHODS.get(name).Options for name in METHODS.names()]
    classes += [term.Options for _, term in TERMS.in_order()]
    return list(dict.fromkeys(classes))


def test_every_integer_option_has_an_upper_bound() -> None:
    """An int option with a resource meaning (a pool, patches, workers, bins...) must refuse a typo with a few extra
    zeros before anything is allocated: every int field of every option section, the registered methods' and
    terms' included, refuses 2**70."""
    import typing

    unbounded = []
    for cls in _option_classes():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] is int:
                try:
                    cls(**{f.name: 2**70})
                except ConfigError as err:
                    assert f.name in str(err), (cls.__name__, f.name, str(err))
                else:
                    unbounded.append(f"{cls.__name__}.{f.name}")
    assert not unbounded, f"int options without an upper bound: {unbounded}"
