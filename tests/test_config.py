"""srunit.config: presets, dotted overrides, Config.with_overrides, cross-field checks and unknown keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from srunit.config import Config, config_from_dict, load_config, parse_overrides, preset_names, read_preset
from srunit.errors import ConfigError
from srunit.methods import CUTOptions, RobustnessOptions
from srunit.registry import METHODS


def test_packaged_presets() -> None:
    assert {"cut", "cyclegan", "fastcut", "gcgan", "srunit", "srunit-official"} <= set(preset_names())
    assert preset_names() == sorted(preset_names())


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_loads_a_registered_method(preset: str) -> None:
    config = load_config(preset)
    assert config.method.name in METHODS.names()
    assert isinstance(config.method, METHODS.get(config.method.name).Options)
    # The YAML of a config reads back into the same config.
    assert config_from_dict(yaml.safe_load(config.to_yaml())) == config


@pytest.mark.parametrize("preset", ["cut", "srunit", "srunit-official", "e1-distancegan", "e2-harmonicgan",
                                    "e6-lipschitz", "e4-eq4"])
def test_method_sections_written_before_terms_were_pluggable_load_and_write_back_unchanged(preset: str) -> None:
    """config.yaml of a run started by the previous srunit (its method sections are in tests/fixtures) loads, names
    the same method (SRUNIT and the ablations are variants of CUT now), and writes itself back as it was: the study
    records, which hash the config, stay valid, and the preset still builds the same config."""
    written = yaml.safe_load((Path(__file__).parent / "fixtures" / "method_sections_1b679e9.yaml").read_text())[preset]
    config = config_from_dict({"method": written})
    assert config.method.name == written["name"] and isinstance(config.method, CUTOptions)
    assert config.to_dict()["method"] == written
    assert load_config(preset).method == config.method
    on = {k for k, v in written.items() if isinstance(v, dict)}
    assert set(config.method.terms) == on


def test_preset_base_is_merged_under_the_preset() -> None:
    fastcut = read_preset("fastcut")
    assert "base" not in fastcut
    assert fastcut["method"]["gan_mode"] == "lsgan"  # from cut.yaml
    assert fastcut["method"]["nce_idt"] is False and fastcut["method"]["lambda_nce"] == 10.0  # its own
    official = load_config("srunit-official")
    robust = official.method.terms["robust"]  # SRUNIT is CUT with its robust term on
    assert isinstance(official.method, CUTOptions) and official.method.name == "srunit"
    assert robust.weight == 1e-3 and robust.max_noise == 1e-3
    assert robust.layers == (0, 1, 2, 3, 4)  # from srunit.yaml
    assert official.model.projector_norm == "shifted"  # the public SRUNIT code's F normalisation
    assert load_config("srunit").model.projector_norm == load_config("cut").model.projector_norm == "cut"


def test_yaml_file_presets_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("base: cut\ntrain:\n  name: mine\n  batch_size: 3\n")
    config = load_config(good)
    assert isinstance(config.method, CUTOptions) and config.train.batch_size == 3 and config.train.name == "mine"
    with pytest.raises(ConfigError, match=re.escape(f"config file {tmp_path / 'gone.yaml'} does not exist")):
        read_preset(tmp_path / "gone.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        read_preset(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping of sections, got list"):
        read_preset(listed)
    with pytest.raises(ConfigError, match=re.escape("unknown preset 'pix2pix'; known: " + ", ".join(preset_names()))):
        read_preset("pix2pix")


def test_parse_overrides_nests_and_checks_the_form() -> None:
    assert parse_overrides(["train.batch_size=4", "method.robust.weight=1", "data.root=a=b"]) == {
        "train": {"batch_size": "4"}, "method": {"robust": {"weight": "1"}}, "data": {"root": "a=b"}}
    for item in ("train.batch_size", "=4"):
        with pytest.raises(ConfigError, match="must look like section.key=value"):
            parse_overrides([item])


def test_overrides_are_typed_and_checked() -> None:
    config = load_config("srunit", ["train.batch_size=4", "train.deterministic=yes", "model.feature_layers=0,4,8",
                                    "data.root=none", "train.lr=1e-3"])
    assert config.train.batch_size == 4 and config.train.deterministic is True
    assert config.model.feature_layers == (0, 4, 8) and config.data.root is None and config.train.lr == 1e-3
    for override, message in (("train.batch_size=two", "train.batch_size: invalid value 'two'; allowed: an integer"),
                              ("train.compile=maybe", "train.compile: invalid value 'maybe'; allowed: true or false"),
                              ("train.lr=fast", "train.lr: invalid value 'fast'; allowed: a number"),
                              ("method.gan_mode=wgan", "method.gan_mode: invalid value 'wgan'")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config("srunit", [override])


def test_unknown_keys_sections_and_missing_method() -> None:
    with pytest.raises(ConfigError, match=r"unknown key train\.batch_sz; allowed keys in train: .*batch_size"):
        load_config("srunit", ["train.batch_sz=4"])
    with pytest.raises(ConfigError, match=r"unknown key method\.robustness; allowed keys in method:"):
        load_config("fastcut", ["method.robustness.weight=1"])
    with pytest.raises(ConfigError, match=r"unknown key method\.nz; allowed keys in method:"):
        load_config("cyclegan", ["method.nz=4"])  # DRIT's option
    with pytest.raises(ConfigError, match=r"unknown key method\.robust; allowed keys in method:"):
        load_config("cyclegan", ["method.robust.weight=1"])  # CycleGAN takes no added loss terms
    # The field that holds CUT's terms is no key of a config; the keys listed are the terms' sections.
    with pytest.raises(ConfigError, match=r"unknown key method\.terms; allowed keys in method: distance, .*lipschitz, "
                                          r"name, .*robust, smooth$"):
        load_config("cut", {"method.terms": {}})
    # A term's section switches it on in any CUT-family method: FastCUT with Eq. 3.
    assert load_config("fastcut", ["method.robust.weight=1"]).method.terms["robust"].weight == 1.0
    with pytest.raises(ConfigError, match=r"unknown config section\(s\) \['optim'\]"):
        config_from_dict({"method": {"name": "cut"}, "optim": {}})
    with pytest.raises(ConfigError, match="method.name is missing; known methods: " + ", ".join(METHODS.names())):
        config_from_dict({"train": {}})
    with pytest.raises(ConfigError, match="unknown method 'pix2pix'"):
        load_config(None, {"method.name": "pix2pix"})
    with pytest.raises(ConfigError, match="train: expected a mapping of keys"):
        config_from_dict({"method": {"name": "cut"}, "train": 3})


def test_with_overrides_later_wins_and_the_result_is_validated() -> None:
    base = load_config("cut", ["train.steps=10"])
    changed = base.with_overrides(["train.steps=20", "train.batch_size=2", "train.steps=30"])
    assert changed.train.steps == 30 and changed.train.batch_size == 2
    assert base.train.steps == 10  # the original is untouched (frozen)
    assert changed.method == base.method and changed.model == base.model
    mapped = base.with_overrides({"train.steps": 5, "model": {"ngf": 8}, "method.lambda_nce": 2})
    assert (mapped.train.steps, mapped.model.ngf, mapped.method.lambda_nce) == (5, 8, 2.0)
    assert base.with_overrides([]) == base
    with pytest.raises(ConfigError, match="train.batch_size: invalid value 0"):
        base.with_overrides(["train.batch_size=0"])
    with pytest.raises(ConfigError, match="unknown key train.nope"):
        base.with_overrides({"train.nope": 1})
    # The method can be switched; its options are then rebuilt from the dict, and the terms the old config held
    # switched off (None) take the new method's defaults, as a switch in load_config does: SRUNIT's Eq. 3 is on.
    switched = base.with_overrides(["method.name=srunit"])
    assert switched.method.name == "srunit" and switched.method.lambda_nce == base.method.lambda_nce
    on = load_config("cut", ["method.name=srunit"]).method  # the cut preset does not name it: on by default
    assert on.terms["robust"] == RobustnessOptions() == switched.method.terms["robust"]


@pytest.mark.parametrize("preprocess", ["none", "scale_width"])
def test_unbatchable_preprocess_with_batch_size_above_one_is_refused(preprocess: str) -> None:
    config = load_config("cut", [f"data.preprocess={preprocess}", "train.batch_size=1"])
    assert not config.data.crops
    with pytest.raises(ConfigError) as e:
        load_config("cut", [f"data.preprocess={preprocess}", "train.batch_size=2"])
    msg = str(e.value)
    assert f"data.preprocess {preprocess!r} keeps each image's own size" in msg
    assert "(train.batch_size 2)" in msg and "use train.batch_size=1 or a cropping mode" in msg
    with pytest.raises(ConfigError, match="keeps each image's own size"):
        config.with_overrides(["train.batch_size=4"])
    with pytest.raises(ConfigError, match="keeps each image's own size"):
        Config(method=config.method, data=config.data, train=load_config("cut", ["train.batch_size=3"]).train)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop"])
def test_cropping_preprocess_batches(preprocess: str) -> None:
    assert load_config("cut", [f"data.preprocess={preprocess}", "train.batch_size=8"]).train.batch_size == 8


def test_preset_names_are_packaged_presets_whatever_the_working_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cut").write_text("method: {name: srunit}\n")  # a file named like a preset
    (tmp_path / "srunit").mkdir()  # a folder named like one (running from src/ has src/srunit)
    assert load_config("cut").method.name == "cut"
    assert load_config("srunit").method.name == "srunit"
    assert load_config("./cut").method.name == "srunit"  # a path is a file
    with pytest.raises(ConfigError, match=re.escape("unknown preset 'mine'; known: ") + ".*e.g. ./mine.yaml"):
        load_config("mine")


def test_base_resolves_against_the_yaml_files_folder_and_cycles_are_refused(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "common.yaml").write_text("base: srunit\ntrain: {lr: 1.0e-3}\n")
    (conf / "run.yaml").write_text("base: common.yaml\ntrain: {batch_size: 2}\n")
    monkeypatch.chdir(tmp_path)  # not conf/: base: common.yaml is found next to run.yaml
    config = load_config(conf / "run.yaml")
    assert (config.method.name, config.train.lr, config.train.batch_size) == ("srunit", 1e-3, 2)
    (conf / "self.yaml").write_text("base: self.yaml\n")
    with pytest.raises(ConfigError, match="its base: chain comes back to itself"):
        load_config(conf / "self.yaml")
    (conf / "a.yaml").write_text("base: b.yaml\n")
    (conf / "b.yaml").write_text("base: ./a.yaml\n")
    with pytest.raises(ConfigError, match=re.escape("a.yaml -> ") + ".*b.yaml -> .*a.yaml"):
        load_config(conf / "a.yaml")
    (conf / "latin1.yaml").write_bytes("train: {name: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(f"config file {conf / 'latin1.yaml'} is not UTF-8 text")):
        load_config(conf / "latin1.yaml")


def _float_keys(cls: type, prefix: str) -> list[str]:
    """Every option of ``cls`` (recursing into nested option sections) that holds a float or floats."""
    import dataclasses
    import typing

    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = [a for a in (typing.get_args(tp) or (tp,)) if a is not type(None)]
        if any(dataclasses.is_dataclass(a) for a in args):  # a section, or an optional one (a term's)
            keys += _float_keys(next(a for a in args if dataclasses.is_dataclass(a)), f"{prefix}{f.name}.")
        elif float in args or (typing.get_origin(tp) is tuple and float in typing.get_args(tp)):
            keys.append(f"{prefix}{f.name}")
    return keys


def _every_float_option() -> list[tuple[str, str]]:
    from srunit.options import DataConfig, ModelConfig, TrainConfig

    out = [("cut", key) for cls, section in ((ModelConfig, "model"), (DataConfig, "data"), (TrainConfig, "train"))
           for key in _float_keys(cls, f"{section}.")]
    from srunit.config import method_option_rows

    for name in METHODS.names():  # the method's own options and the sections of the loss terms it takes
        out += [(name, row.key) for row in method_option_rows(name)
                if "float" in row.type.split(" | ") or row.type == "list of float"]
    return out


def test_the_float_options_are_found() -> None:
    keys = {key for _, key in _every_float_option()}
    assert {"train.lr", "train.beta1", "model.init_gain", "method.lambda_nce", "method.robust.weight"} <= keys


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "1e999"])
@pytest.mark.parametrize(("method", "key"), _every_float_option())
def test_non_finite_numbers_are_refused_in_every_float_option(method: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: invalid value .*; allowed: a finite number"):
        load_config(None, [f"method.name={method}", f"{key}={value}"])


def test_non_finite_numbers_from_yaml_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("base: srunit\nmethod:\n  robust:\n    weight: .inf\ntrain:\n  lr: .nan\n")
    with pytest.raises(ConfigError, match=r"method.robust.weight: invalid value inf; allowed: a finite number"):
        load_config(path)


# ----------------------------------------------------------------------------- bounds: what a file or a caller gives

def _yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_a_duplicate_yaml_key_is_an_error_naming_the_key_and_the_file(tmp_path: Path) -> None:
    path = _yaml_file(tmp_path, "base: srunit\ndata:\n  crop_size: 32\n  crop_size: 64\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: line 4: the key 'crop_size' appears twice"):
        load_config(path)
    path = _yaml_file(tmp_path, "base: srunit\ntrain: {lr: 0.1}\ntrain: {lr: 0.2}\n")
    with pytest.raises(ConfigError, match="the key 'train' appears twice"):
        load_config(path)
    # A merge key is no duplicate, and a key it brings may be overridden.
    path = _yaml_file(tmp_path, "base: srunit\ntrain: &t {lr: 0.1, batch_size: 2}\n"
                                "model:\n  <<: {ngf: 8, ndf: 8}\n  ngf: 16\n")
    assert load_config(path).model.ngf == 16 and load_config(path).model.ndf == 8


def test_an_integer_of_thousands_of_digits_in_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = _yaml_file(tmp_path, "base: srunit\ndata:\n  crop_size: " + "9" * 10_000 + "\n")
    with pytest.raises(ConfigError, match=r"line 3: an integer of 10000 digits") as err:
        load_config(path)
    assert str(path) in str(err.value) and len(str(err.value)) < 400


def test_an_integer_of_thousands_of_digits_in_an_override_is_named_briefly() -> None:
    with pytest.raises(ConfigError, match=r"data\.crop_size") as err:
        load_config("srunit", ["data.crop_size=" + "9" * 10_000])
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("text", ["x: " + "[" * 100_000 + "]" * 100_000, "x:\n" + "".join(
    " " * i + "- \n" for i in range(0, 300, 2))])
def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = _yaml_file(tmp_path, "base: srunit\n" + text + "\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: .*nested .*more than 64 levels"):
        load_config(path)


@pytest.mark.parametrize(("override", "message"), [
    ("data.crop_size=3377699720527872", "data.crop_size 3377699720527872 is more than"),
    ("data.load_size=100000", "data.load_size 100000 is more than"),
    ("model.ngf=1000000000", "model.ngf: invalid value 1000000000; allowed: an integer from 1 to"),
    ("model.n_blocks=1000000000", "model.n_blocks: invalid value 1000000000; allowed: an integer from 1 to"),
    ("model.projector_dim=1000000000", "model.projector_dim: invalid value 1000000000"),
    ("data.num_workers=1000000", "data.num_workers: invalid value 1000000; allowed: an integer from 0 to"),
    ("train.batch_size=1000000000", "train.batch_size: invalid value 1000000000; allowed: an integer from 1 to"),
    ("train.steps=100000000000000000000", "train.steps: invalid value 100000000000000000000"),
    ("model.init_gain=-0.02", "model.init_gain: invalid value -0.02; allowed: a number > 0"),
    ("model.init_gain=0", "model.init_gain: invalid value 0.0; allowed: a number > 0"),
])
def test_sizes_and_numbers_that_cannot_be_right_are_config_errors(override: str, message: str) -> None:
    extra = ["data.load_size=3377699720527872"] if override.startswith("data.crop_size") else []
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("srunit", [override, *extra])


def test_load_config_names_arguments_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"load_config: overrides must be a list of 'section\.key=value' strings or a "
                                        r"mapping, got str 'train\.lr=0\.1'; wrap it in a list"):
        load_config("srunit", "train.lr=0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"load_config: overrides must be .* got int"):
        load_config("srunit", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"load_config: overrides must hold strings, got int 3 at position 0"):
        load_config("srunit", [3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"load_config: preset must be a preset name, a path to a YAML file or None, "
                                        r"got int 5"):
        load_config(5)  # type: ignore[arg-type]
    assert load_config(Path(__file__).parents[1] / "src" / "srunit" / "presets" / "cut.yaml").method.name == "cut"


@pytest.mark.parametrize(("override", "message"), [
    ("method.nz=1000000000", "method.nz: invalid value 1000000000; allowed: an integer from 1 to 4096"),
    ("method.dis_layers=64", "method.dis_layers: invalid value 64; allowed: an integer from 1 to 10"),
    ("method.content_dis_layers=11", "method.content_dis_layers: invalid value 11; allowed: an integer from 0 to 10"),
])
def test_drit_sizes_that_cannot_be_right_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("drit", [override])


def test_options_built_by_hand_are_checked_against_their_types() -> None:
    """The config loader converts what it reads ("false" -> False); options built by hand were not checked:
    CUTOptions(nce_idt="false") trained with the identity term on, num_patches=8.5 was taken."""
    import numpy as np

    from srunit.methods import CycleGANOptions
    from srunit.options import DataConfig, ModelConfig, TrainConfig

    cases = [
        (lambda: CUTOptions(nce_idt="false"), "method.nce_idt: invalid value 'false'; allowed: true or false"),
        (lambda: CUTOptions(num_patches=8.5), "method.num_patches: invalid value 8.5; allowed: an integer"),
        (lambda: CUTOptions(nce_negatives="pixel"), "method.nce_negatives: invalid value 'pixel'; allowed: image, "
                                                    "batch"),
        (lambda: CycleGANOptions(lambda_a="10"), "method.lambda_a: invalid value '10'; allowed: a number"),
        (lambda: RobustnessOptions(layers=[0, 1]), r"method.robust.layers: invalid value \[0, 1\]; allowed: a tuple"),
        (lambda: RobustnessOptions(sample_one_layer=1), "method.robust.sample_one_layer: invalid value 1; allowed: "
                                                        "true or false"),
        (lambda: ModelConfig(ngf=4.0), "model.ngf: invalid value 4.0; allowed: an integer"),
        (lambda: DataConfig(flip="no"), "data.flip: invalid value 'no'; allowed: true or false"),
        (lambda: DataConfig(root=3), "data.root: invalid value 3; allowed: a string, or null"),
        (lambda: TrainConfig(steps=True), "train.steps: invalid value True; allowed: an integer"),
    ]
    for build, message in cases:
        with pytest.raises(ConfigError, match=f"^{message}"):
            build()
    # numpy's numbers and bools are numbers and bools; an int is a number.
    assert CUTOptions(num_patches=np.int64(8), nce_idt=np.bool_(False), lambda_nce=np.float32(2.0)).num_patches == 8
    assert CycleGANOptions(lambda_a=10).lambda_a == 10


def test_a_yaml_text_read_again_is_its_own_copy_and_an_edited_file_is_read_anew(tmp_path: Path) -> None:
    """The parse of a text is kept (load_config reads the same presets again and again): what one caller changes in
    what it got is not in the next read, and a file edited between two loads gives its new values."""
    from srunit._yaml import read_yaml

    text = "train: {lr: 1.50, loggers: [yes]}\nmodel: {ngf: 8}\n"
    first = read_yaml(text, "t.yaml")
    first.data["train"]["lr"] = 9.0
    first.data["train"]["loggers"].append("more")
    first.booleans["train.loggers"] = "changed"
    again = read_yaml(text, "t.yaml")
    assert again.data == {"train": {"lr": 1.5, "loggers": [True]}, "model": {"ngf": 8}}
    assert again.booleans == {"train.loggers": "yes"} and again.numbers == {"train.lr": "1.50", "model.ngf": "8"}
    with pytest.raises(ConfigError, match=r"^c\.yaml is not valid YAML: unacceptable character #x001f"):
        read_yaml("\x1f", "c.yaml")  # refused by the reader, as the loader is made
    long = "# " + "x" * 70_000 + "\ntrain: {lr: 1.50}\n"  # longer than the texts whose parse is kept: read each time
    assert read_yaml(long, "l.yaml").data == {"train": {"lr": 1.5}}
    path = _yaml_file(tmp_path, "base: srunit\nmodel: {ngf: 8}\n")
    assert load_config(path).model.ngf == 8
    path.write_text("base: srunit\nmodel: {ngf: 12}\n")
    assert load_config(path).model.ngf == 12
