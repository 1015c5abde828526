"""Round thirteen, a confirmation probe of issue 24's classes aimed at options that other options make void
(through `train`, `bench synthscapes`, `tune`, `export`, `eval` and `bench`), and at the lower-level Python API:
`srunit.methods`, `srunit.networks`, `srunit.losses`, `srunit.nn`, `srunit.synthscapes` and `srunit.report`. Each
test but the two that check what is still taken reproduced a defect first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from srunit.config import load_config
from srunit.engine.trainer import check_options_take_effect
from srunit.errors import ConfigError
from srunit.export import export_generator
from srunit.losses import RobustnessTerms, patch_nce_loss, robustness_ratios, sample_feature_noise, semantic_distances
from srunit.methods import CUTOptions, ImagePool, RobustnessOptions, build_method
from srunit.networks import PatchProjector, ResnetGenerator, sample_patch_ids
from srunit.nn import init_weights
from srunit.report import highlight_flips, render_report
from srunit.synthscapes import SegmenterSettings, write_test_set


def _refused(preset: str, overrides: list[str]) -> str:
    """The message of `train`'s check of a new run's command line (`check_options_take_effect`), '' if accepted."""
    try:
        check_options_take_effect(load_config(preset, overrides), overrides)
    except ConfigError as err:
        return str(err)
    return ""


@pytest.mark.parametrize(("preset", "overrides", "says"), [
    # E5 adds no noise: each trained as without the option
    ("e5-semantic-consistency", ["method.robust.max_noise=0.2"], "semantic-consistency (E5) adds no noise"),
    ("e5-semantic-consistency", ["method.robust.min_noise=1e-5"], "semantic-consistency (E5) adds no noise"),
    ("e5-semantic-consistency", ["method.robust.noise=official"], "semantic-consistency (E5) adds no noise"),
    # E3 has no F_k whose gradient v1 stops
    ("e3-no-projector", ["method.robust.grad=v1"], "no-projector (E3) compares the features without F_k"),
    # no warm-up before a start of 0
    ("srunit", ["method.robust.start=0", "method.robust.warmup=freeze"], "start is 0, so there is no warm-up"),
    # a term of weight 0, or switched on after the last step (start 1)
    ("srunit", ["method.robust.weight=0", "method.robust.max_noise=0.2"], "method.robust.weight is 0"),
    ("srunit", ["method.robust.weight=0", "method.robust.warmup=freeze"], "method.robust.weight is 0"),
    ("srunit", ["method.robust.start=1", "method.robust.weight=1e-3"], "method.robust.start is 1"),
    ("cut", ["method.distance.weight=0", "method.distance.stats_images=10"], "method.distance.weight is 0"),
    ("cut", ["method.smooth.start=1", "method.smooth.bins=8"], "method.smooth.start is 1"),
    ("e6-lipschitz", ["method.lipschitz.start=1", "method.lipschitz.weight=5"], "method.lipschitz.start is 1"),
    ("cut", ["method.lipschitz.weight=0", "method.lipschitz.real=target"], "method.lipschitz.weight is 0"),
    # one layer: sampling it is taking it, and K is 1
    ("srunit", ["method.robust.layers=2", "method.robust.sample_one_layer=true"], "holds one layer (2)"),
    # PatchNCE off
    ("cut", ["method.lambda_nce=0", "method.nce_temperature=0.1"], "method.lambda_nce is 0"),
    ("cut", ["method.lambda_nce=0", "method.nce_negatives=batch"], "method.lambda_nce is 0"),
    # identity weights multiplied by a weight of 0
    ("cyclegan", ["method.lambda_a=0", "method.lambda_b=0", "method.lambda_identity=0.5"],
     "method.lambda_a and method.lambda_b are 0"),
    ("stegogan", ["method.lambda_a=0", "method.lambda_b=0", "method.lambda_identity=1"],
     "method.lambda_a and method.lambda_b are 0"),
    ("gcgan", ["method.lambda_ab=0", "method.lambda_gc=3"], "method.lambda_ab is 0"),
    ("gcgan", ["method.lambda_ab=0", "method.lambda_identity=1"], "method.lambda_ab is 0"),
    # a size a mode that resizes nothing never reads
    ("cut", ["data.preprocess=crop", "data.load_size=300"], "data.preprocess crop resizes nothing"),
    ("cut", ["data.preprocess=none", "data.load_size=64"], "data.preprocess none resizes nothing"),
])
def test_an_option_the_others_make_void_is_refused_when_given(preset: str, overrides: list[str], says: str) -> None:
    # Each trained as without the option, status 0, without a word.
    message = _refused(preset, overrides)
    assert "has no effect" in message and says in message and "or leave it out" in message


@pytest.mark.parametrize(("preset", "overrides"), [
    ("srunit", ["method.robust.weight=0"]),  # switching the term off is no void option
    ("srunit", ["method.robust.start=1", "method.robust.warmup=freeze"]),  # trains D alone throughout: acts
    ("srunit-official", ["method.robust.sample_one_layer=false"]),  # the preset's own divide_one_layer_by_k stays
    ("e5-semantic-consistency", ["method.robust.weight=1e-3"]),
    ("e3-no-projector", ["method.robust.max_noise=0.2"]),
    ("cut", ["method.lambda_nce=0"]),
    ("cyclegan", ["method.lambda_a=0", "method.lambda_identity=0.5"]),  # B's identity term still acts
    ("gcgan", ["method.lambda_ab=0"]),
    ("cut", ["data.preprocess=scale_width", "data.load_size=64", "data.crop_size=32"]),
])
def test_options_that_act_and_presets_own_values_are_still_taken(preset: str, overrides: list[str]) -> None:
    assert _refused(preset, overrides) == ""


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' work fails the test at once (before the fixes they trained or timed for minutes)."""
    import srunit.cli.bench as bench
    import srunit.cli.bench_synthscapes as bench_synthscapes
    import srunit.tune.study as study

    def work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command went on to its work")

    for module, name in ((bench_synthscapes, "run_benchmark"), (study, "run_tune"), (bench, "measure_speed"),
                         (bench, "measure_loader")):
        monkeypatch.setattr(module, name, work)


def test_bench_and_tune_refuse_a_void_override_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
        cli_status: Callable[[list[str]], int]) -> None:
    # Both trained every run as without it (round twelve noted the check was on train's command line only).
    _no_work(monkeypatch)
    out = tmp_path / "b"
    assert cli_status(["bench", "synthscapes", "--methods", "cut,e5-semantic-consistency", "--out", str(out),
                    "--method.robust.max_noise", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "--methods e5-semantic-consistency: method.robust.max_noise 0.3 has no effect" in err
    assert not out.exists()
    out = tmp_path / "t"
    assert cli_status(["tune", "synthscapes", "--preset", "e5-semantic-consistency", "--out", str(out),
                    "--method.robust.max_noise", "0.3"]) == 2
    assert "method.robust.max_noise 0.3 has no effect" in capsys.readouterr().err
    assert not out.exists()


def test_tune_refuses_an_override_of_a_key_it_tunes_and_startup_trials_of_another_sampler(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
        cli_status: Callable[[list[str]], int]) -> None:
    _no_work(monkeypatch)
    # `tune --preset cut --method.lambda_nce 0`: every trial replaced 0 with its own draw (lambda_nce=1.145 in the
    # trial's config.yaml), without a word; --startup-trials with --sampler random changed nothing.
    out = tmp_path / "t"
    assert cli_status(["tune", "synthscapes", "--preset", "cut", "--out", str(out), "--method.lambda_nce", "2"]) == 2
    assert "--method.lambda_nce: the search space tunes method.lambda_nce" in capsys.readouterr().err
    assert cli_status(["tune", "synthscapes", "--preset", "srunit", "--out", str(out), "--method.robust.weight",
                    "1e-3"]) == 2
    assert "tunes method.robust.weight, so every trial sets it" in capsys.readouterr().err
    assert cli_status(["tune", "synthscapes", "--preset", "cut", "--out", str(out), "--sampler", "random",
                    "--startup-trials", "5"]) == 2
    assert "--startup-trials 5 applies to the tpe sampler only" in capsys.readouterr().err
    assert not out.exists()
    # a key the space does not tune is still fixed for every trial
    assert cli_status(["tune", "synthscapes", "--preset", "srunit", "--show-space", "--method.lambda_nce", "2"]) == 0


def test_export_refuses_an_opset_for_a_file_that_is_not_onnx(tmp_path: Path, capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    # `export RUN --output g.pt2 --opset 13` exported, the opset unused, without a word. Refused before the run is read.
    for name in ("g.pt2", "g.ts"):
        with pytest.raises(ConfigError, match=r"--opset 13 applies to ONNX files only, and this export writes a "):
            export_generator(tmp_path / "no-run", tmp_path / name, opset=13)
        assert cli_status(["export", str(tmp_path / "no-run"), "--output", str(tmp_path / name), "--opset", "13"]) == 2
        assert "applies to ONNX files only" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [
    ["eval", "paired", "--pred", "p", "--target", "t"],
    ["eval", "seg", "--images", "i", "--labels", "l", "--segmenter", "synthscapes", "--classes", "9"],
    ["eval", "fid", "--real", "r", "--fake", "f", "--weights", "w.pt"],
    ["bench", "speed", "--preset", "cut"],
    ["bench", "loader", "--preset", "cut"],
])
def test_overwrite_without_json_is_refused(argv: list[str], capsys: pytest.CaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch,
                                           cli_status: Callable[[list[str]], int]) -> None:
    _no_work(monkeypatch)
    # `eval paired ... --overwrite` (no --json) scored and printed, the option unused, as --replace-record without
    # --run is refused.
    assert cli_status([*argv, "--overwrite"]) == 2
    assert "--overwrite replaces the --json file if it exists, and no --json was given" in capsys.readouterr().err


def test_options_and_loss_helpers_built_by_hand_refuse_values_they_would_misread() -> None:
    # RobustnessOptions(form="eq5") trained as eq3 (grad, warmup, noise alike); RobustnessTerms(anchor="output")
    # anchored at the input; patch_nce_loss(temperature=0) was NaN and -0.07 rewarded the negatives (17.35);
    # sample_feature_noise drew negative magnitudes; sample_patch_ids(feat, 0) drew nothing (a PatchNCE of NaN).
    for key, value in (("form", "eq5"), ("grad", "v3"), ("warmup", "none"), ("noise", "gaussian")):
        with pytest.raises(ConfigError, match=rf"method\.robust\.{key}: invalid value '{value}'"):
            RobustnessOptions(**{key: value})
    for kwargs in ({"anchor": "output"}, {"estimator": "cv"}, {"num_patches": 0}, {"min_noise": 0.2}):
        with pytest.raises(ValueError, match="RobustnessTerms|noise magnitudes"):
            RobustnessTerms(**kwargs)  # type: ignore[arg-type]
    q = torch.nn.functional.normalize(torch.randn(1, 4, 8), dim=-1)
    for temperature in (0, -0.07, float("nan")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            patch_nce_loss(q, q, temperature=temperature)
    for key in (torch.randn(1, 5, 8), torch.randn(1, 4, 6), torch.randn(2, 4, 8)):
        with pytest.raises(ValueError, match=r"query and key must be \(B, P, D\) features of one shape"):
            patch_nce_loss(q, key)
    assert torch.isfinite(patch_nce_loss(q, q))
    for low, high in ((0.1, 0.01), (1e-7, -0.1), (0.0, 0.1)):
        with pytest.raises(ValueError, match="0 < min_noise <= max_noise"):
            sample_feature_noise(torch.zeros(1, 4, 4, 4), max_noise=high, min_noise=low)
    for count in (0, -3, 2.5):
        with pytest.raises(ValueError, match="num_patches must be an integer >= 1"):
            sample_patch_ids(torch.zeros(1, 4, 8, 8), count)  # type: ignore[arg-type]


def test_networks_and_build_method_name_arguments_of_the_wrong_type() -> None:
    # build_method("cut", model) and build_method(options, None) were AttributeErrors from inside a constructor;
    # ngf 0 and dim 0 were ZeroDivisionErrors in the init; init_weights("G") an AttributeError, gain -1 torch's
    # "normal expects std >= 0.0".
    model = load_config("cut").model
    with pytest.raises(TypeError, match=r"build_method: options must be a method's options .* got str 'cut'"):
        build_method("cut", model)
    for wrong in (None, {"ngf": 4}):
        with pytest.raises(TypeError, match="build_method: model must be a srunit.options.ModelConfig"):
            build_method(CUTOptions(), wrong)
    with pytest.raises(ConfigError, match=r"model\.ngf: invalid value 0"):
        ResnetGenerator(ngf=0, n_blocks=1)
    with pytest.raises(ValueError, match="PatchProjector: dim must be an integer >= 1"):
        PatchProjector([4], dim=0)
    with pytest.raises(TypeError, match="init_weights: module must be a torch.nn.Module"):
        init_weights("G")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init_weights: gain must be a finite number > 0"):
        init_weights(torch.nn.Linear(2, 2), gain=-1)


def test_report_and_synthscapes_helpers_name_arguments_they_cannot_take(tmp_path: Path) -> None:
    # render_report(["runs/cut"]) was an AttributeError, num_images=-1 left out the last image without a word;
    # highlight_flips with a uint8 mask an IndexError (or the wrong pixels), alpha 2 wrapped past 255;
    # write_test_set(without=99) an IndexError once its folders were made; SegmenterSettings(steps=0) torch's
    # "Expected positive integer total_steps", label_map_share 2 a scorer trained on label maps alone.
    with pytest.raises(TypeError, match="render_report: items must be loaded Run, Bench or Study objects"):
        render_report(["runs/cut"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="render_report: items must be a list"):
        render_report("runs/cut")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="render_report: num_images must be an integer >= 0"):
        render_report([], num_images=-1)
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(TypeError, match="mask bool"):
        highlight_flips(image, np.full((4, 4), 7, np.uint8))
    with pytest.raises(ValueError, match=r"alpha is an opacity in \[0, 1\]"):
        highlight_flips(image, np.ones((4, 4), bool), alpha=2)
    assert highlight_flips(image, np.ones((4, 4), bool), alpha=1.0)[0, 0].tolist() != [0, 0, 0]
    with pytest.raises(ConfigError, match="write_test_set: without must be an integer from 0 to 7"):
        write_test_set(tmp_path / "s", num_test=1, size=16, without=99)
    assert not (tmp_path / "s").exists()
    with pytest.raises(ConfigError, match="SegmenterSettings: steps must be an integer"):
        SegmenterSettings(steps=0)
    with pytest.raises(ConfigError, match="SegmenterSettings: label_map_share must be between 0 and 1"):
        SegmenterSettings(label_map_share=2.0)
    assert SegmenterSettings(size=32, num_images=8, steps=2, batch_size=2, width=4).steps == 2


def test_the_robustness_helpers_and_the_pool_name_layers_and_inputs_they_cannot_take() -> None:
    # robustness_ratios with a layer index out of range or fewer features than layers was an IndexError;
    # semantic_distances zipped one translation with two layers into one layer's distances, without a word;
    # ImagePool.query of a list an AttributeError.
    g = ResnetGenerator(ngf=4, n_blocks=2)
    f = PatchProjector(g.feature_channels, dim=8)
    h = g.encode(torch.zeros(1, 3, 32, 32))
    terms = RobustnessTerms(num_patches=4)
    with pytest.raises(ValueError, match=r"robustness_ratios: layers must be feature-layer indices in 0\.\.4, got"):
        robustness_ratios(g, f, [9], [h[0]], terms)
    with pytest.raises(ValueError, match=r"robustness_ratios: feats must hold one tensor per layer \(2 for layers"):
        robustness_ratios(g, f, [0, 1], [h[0]], terms)
    with pytest.raises(ValueError, match=r"semantic_distances: translated_feats must hold one tensor per layer"):
        semantic_distances(f, [0, 1], [h[0], h[1]], [h[0]], terms)
    assert len(semantic_distances(f, [0, 1], [h[0], h[1]], [h[0], h[1]], terms)) == 2
    with pytest.raises(TypeError, match=r"ImagePool.query: images must be a \(B, C, H, W\) tensor, got list"):
        ImagePool(2).query([torch.zeros(1, 3, 4, 4)])  # type: ignore[arg-type]

