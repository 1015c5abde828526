"""Round twenty-six (A): the Python API as its reference pages describe it, called as written and as a hostile caller
would call it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from srunit.config import Config
from srunit.errors import ConfigError


class _Unexportable(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(x).real  # no ONNX symbolic: the exporter fails and dumps its Torch IR graph


def test_a_failed_onnx_export_prints_no_ir_graph_on_standard_output(tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture) -> None:
    """`export_generator(run, "g.onnx", opset=999)` (or any failed ONNX export) raised the one-line error, but the
    exporter's C++ side first printed the whole Torch IR graph, a hundred lines and more, on standard output, which
    srunit held back from standard error only: `srunit export ... > out.txt` filled the file with it."""
    from srunit.export import DEFAULT_OPSET, _write_onnx

    with pytest.raises(ConfigError, match=f"opset {DEFAULT_OPSET} failed"):
        _write_onnx(_Unexportable(), (torch.rand(1, 3, 8, 8),), tmp_path / "g.onnx", DEFAULT_OPSET, False, {})
    out, err = capfd.readouterr()
    assert "IR graph" not in out and "IR graph" not in err
    assert not (tmp_path / "g.onnx").exists()


def _latest(run: Path) -> str:
    return os.readlink(run / "checkpoints" / "latest")


@pytest.mark.slow
def test_a_trainer_that_released_its_run_cannot_move_it_back(tiny_config: Callable[..., Config], tiny_data: Path,
                                                             tmp_path: Path) -> None:
    """A Trainer whose `fit()` had ended (the run released) kept its networks at that step: another Trainer resumed
    the run and trained it on, and the first one's `save(keep=False)` then rewrote its own old step and pointed
    `latest` back at it, even while the second held the run's lock; its `fit()` trained on from its old step. Both
    now take the run again only where it is as this Trainer left it."""
    from srunit import Trainer

    config = tiny_config("cut", "train.steps=2", "train.name=r", data_root=tiny_data, runs_dir=tmp_path)
    first = Trainer(config, show_progress=False)
    run = first.fit()
    first.save(keep=False)  # the run is where it left it: allowed, as before
    assert _latest(run) == "step_00000002"
    Trainer.resume(run, ["train.steps=3"], show_progress=False).fit()
    assert _latest(run) == "step_00000003"
    saved = (run / "checkpoints" / "step_00000003" / "G.safetensors").read_bytes()
    holder = Trainer.resume(run, ["train.steps=4"], show_progress=False)  # holds the run's lock
    for call in (lambda: first.save(keep=False), lambda: first.fit()):
        with pytest.raises(ConfigError, match="is held by another Trainer of this process"):
            call()
    holder.release()
    for call in (lambda: first.save(keep=True), lambda: first.fit(stop_at=3), lambda: first.fit()):
        with pytest.raises(ConfigError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and "at step 3" in text and "at step 2" in text and "Trainer.resume(" in text, text
    assert _latest(run) == "step_00000003"
    assert (run / "checkpoints" / "step_00000003" / "G.safetensors").read_bytes() == saved
    assert Trainer.resume(run, show_progress=False).fit() == run  # the run itself is untouched, and not locked


def test_image_tensors_and_codes_that_hold_no_real_values_are_named(tiny_runs: dict[str, Path],
                                                                    tiny_data: Path, tmp_path: Path) -> None:
    """`translate_tensor(x.to_sparse())` was torch's `NotImplementedError: Could not run 'aten::ne.Scalar' with
    arguments from the 'SparseCPU' backend ...`, an MKL-DNN tensor the same from 'aten::abs.out', a meta tensor
    `RuntimeError: Tensor.item() cannot be called on meta tensors`; a DRIT attribute code on the meta device was that
    RuntimeError, and a complex code was taken with its imaginary part dropped (a UserWarning of torch's only). Each is
    now a ValueError (a ConfigError for the code) naming the argument and the fix."""
    from srunit import Translator

    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    for bad, fix in ((x.to_sparse(), "x.to_dense()"), (x.to_mkldnn(), "x.to_dense()"),
                     (torch.empty(1, 3, 8, 8, device="meta"), "meta")):
        with pytest.raises(ValueError) as err:
            translator.translate_tensor(bad)
        text = str(err.value)
        assert text.startswith("translate_tensor: x ") and fix in text and "\n" not in text, text
    assert translator.translate_tensor(x).shape == x.shape  # a dense one, as before
    config_drit = ["data.load_size=36", "data.crop_size=32", "data.num_workers=0", "model.ngf=4", "model.ndf=4",
                   "method.dis_layers=3", "method.content_dis_layers=0", "train.steps=1", "train.device=cpu",
                   f"data.root={tiny_data}", f"train.runs_dir={tmp_path}", "train.name=drit"]
    from srunit import Trainer, load_config

    drit = Translator.from_checkpoint(Trainer(load_config("drit", config_drit), show_progress=False).fit(),
                                      device="cpu")
    nz = drit.attribute_code(0).shape[0]
    for code in (torch.zeros(nz, device="meta"), torch.zeros(nz, dtype=torch.complex64), torch.zeros(nz).to_sparse()):
        with pytest.raises(ConfigError) as cerr:
            drit.translate_tensor(x, attribute=code)
        assert str(cerr.value).startswith("attribute: ") and "\n" not in str(cerr.value), str(cerr.value)
    assert drit.translate_tensor(x, attribute=torch.zeros(nz, dtype=torch.float64)).shape == x.shape


@pytest.mark.parametrize("key", [1, None, ("train", "steps"), b"train.steps"])
def test_a_mapping_of_overrides_with_a_key_that_is_not_a_string_is_named(key: object) -> None:
    """`load_config("cut", {1: 3})` (a mapping's key an int, None, a tuple or bytes) was Python's `TypeError: argument
    of type 'int' is not iterable` from inside the config module ('a bytes-like object is required' for bytes),
    naming neither the function nor the argument; `Config.with_overrides` alike."""
    from srunit import load_config

    for call in (lambda: load_config("cut", {key: 3}), lambda: load_config("cut").with_overrides({key: 3})):
        with pytest.raises(TypeError) as err:
            call()
        text = str(err.value)
        assert "overrides" in text and "keys must be 'section.key' strings" in text and repr(key) in text, text
    assert load_config("cut", {"train.steps": 3, "train": {"lr": 0.001}}).train.steps == 3  # as before


def test_a_translator_built_from_its_fields_checks_them(tiny_runs: dict[str, Path]) -> None:
    """`Translator(generator, device, dtype)` (its dataclass fields, as the reference page shows them): a dtype of
    float64 made `.precision` raise a bare StopIteration, `"fp16"` was torch's `set_autocast_dtype(): argument
    'dtype' must be torch.dtype, not str`, int8 translated in float32 under torch's warning that autocast is off, a
    module that does not translate (`nn.Identity()`) was `AttributeError: ... no attribute 'size_multiple'`, and a
    device given as a string with fp16 was `'str' object has no attribute 'type'`. Each is a TypeError naming the
    field and the way (`Translator.from_checkpoint`)."""
    from srunit import Translator, load_generator

    generator = load_generator(tiny_runs["cut"]).eval()
    cpu = torch.device("cpu")
    for args, field in (((generator, cpu, torch.float64), "dtype"), ((generator, cpu, "fp16"), "dtype"),
                        ((generator, cpu, torch.int8), "dtype"), ((torch.nn.Identity(), cpu), "generator"),
                        ((generator, "cpu", torch.float16), "device"), ((generator, None), "device")):
        with pytest.raises(TypeError) as err:
            Translator(*args)  # type: ignore[arg-type]
        text = str(err.value)
        assert text.startswith(f"Translator: {field} ") and "Translator.from_checkpoint" in text, text
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    for dtype, precision in ((torch.float32, "fp32"), (torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        translator = Translator(generator, cpu, dtype)
        assert translator.precision == precision and translator.translate_tensor(x).shape == x.shape


def test_a_premultiplied_grey_image_is_read_as_its_docstring_says() -> None:
    """`to_rgb` (and so `pil_to_tensor`, `translate_images`, `mask_images`) says mode "La" (grey with premultiplied
    alpha) is composited onto black, as "LA" is; it was PIL's `ValueError: conversion from La to L not supported`."""
    import numpy as np
    from PIL import Image

    from srunit.data.images import to_rgb

    grey = np.array([[200, 100], [50, 0]], dtype=np.uint8)
    alpha = np.array([[255, 128], [0, 255]], dtype=np.uint8)
    premultiplied = np.stack([(grey.astype(int) * alpha // 255).astype(np.uint8), alpha], axis=-1)
    la = Image.frombytes("La", (2, 2), premultiplied.tobytes())
    rgb = np.asarray(to_rgb(la))
    # Composited onto black, an LA pixel shows grey * alpha / 255: the premultiplied grey itself, within rounding.
    assert rgb.shape == (2, 2, 3) and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert np.abs(rgb[..., 0].astype(int) - premultiplied[..., 0].astype(int)).max() <= 1


def test_masks_built_from_their_fields_and_their_path_arguments_are_checked(tmp_path: Path) -> None:
    """`UnmatchedMasks(network, "cpu", torch.float16)` was `AttributeError: 'str' object has no attribute 'type'` at
    its first mask, a float64 dtype computed in float32 under torch's warning that autocast is off, and
    `UnmatchedMasks.from_checkpoint(1)` / `write_folder(1, out)` Python's `expected str, bytes or os.PathLike object,
    not int`. Each is a TypeError naming the argument, as `Translator`'s are."""
    from srunit.networks import StegoMaskGenerator
    from srunit.unmatched import UnmatchedMasks

    network = StegoMaskGenerator(ngf=4, n_blocks=2).eval()
    cpu = torch.device("cpu")
    for args, field in (((network, "cpu", torch.float16), "device"), ((network, cpu, torch.float64), "dtype"),
                        ((torch.nn.Identity(), cpu), "network")):
        with pytest.raises(TypeError) as err:
            UnmatchedMasks(*args)  # type: ignore[arg-type]
        assert str(err.value).startswith(f"UnmatchedMasks: {field} "), str(err.value)
    masks = UnmatchedMasks(network, cpu)
    for call, name in ((lambda: UnmatchedMasks.from_checkpoint(1), "from_checkpoint: checkpoint"),  # type: ignore
                       (lambda: masks.write_folder(1, tmp_path / "m"), "write_folder: images"),  # type: ignore
                       (lambda: masks.write_folder(tmp_path, None), "write_folder: out")):  # type: ignore
        with pytest.raises(TypeError, match=f"UnmatchedMasks.{name} must be a path"):
            call()
    assert masks.mask_tensor(torch.zeros(1, 3, 8, 8)).shape == (1, 1, 8, 8)


def test_benchmark_arguments_that_would_do_nothing_or_fail_late_are_refused_first(tmp_path: Path) -> None:
    """`profile_settings("cpu", overrides="train.steps=3")` was taken as the overrides 't', 'r', 'a', ... (and
    `methods="cut"` refused as `unknown method preset 'c'`); `run_benchmark(out, settings, baseline="srunit")` with
    srunit not among the methods trained and scored every run, then summarised no difference without a word (the
    command line refused it, the function did not); `run_benchmark("a-file", ...)` was pathlib's
    `NotADirectoryError`. Each is refused before anything is written."""
    from srunit import profile_settings, run_benchmark
    from srunit.errors import DataError

    for key, value in (("overrides", "train.steps=3"), ("methods", "cut"), ("conditions", "matched")):
        with pytest.raises(TypeError, match=f"profile_settings: {key} must be a list of strings, got str"):
            profile_settings("cpu", **{key: value})
    assert profile_settings("cpu", methods=("cut",), overrides=["train.lr=0.001"]).overrides[-1] == "train.lr=0.001"
    settings = profile_settings("cpu", methods=("cut",))
    with pytest.raises(ConfigError, match="--baseline srunit is not among --methods cut"):
        run_benchmark(tmp_path / "bench", settings, baseline="srunit")
    with pytest.raises(ConfigError, match="--baseline drit is not among"):
        run_benchmark(tmp_path / "bench", settings, baseline=["cut", "drit"])
    assert not (tmp_path / "bench").exists()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(DataError, match="--out .*file is a regular file, not a folder"):
        run_benchmark(tmp_path / "file", settings, baseline="cut")
    assert (tmp_path / "file").read_text() == "mine"


def test_hallucination_counts_and_classes_of_the_wrong_kind_are_named() -> None:
    """`hallucination_scores` with NaN or inf counts was `cannot convert float NaN to integer` (OverflowError for
    inf), negative counts gave `pixels=-2, labelled=-12` and a rate as if they were counts, a class given by its name
    was `invalid literal for int()`, one id `'int' object is not iterable`, and 1.7 was class 1."""
    import numpy as np

    from srunit.errors import DataError
    from srunit.eval.hallucination import hallucination_scores

    names = ["a", "b", "c"]
    ok = np.ones((3, 4))
    for counts in (np.full((3, 4), np.nan), np.full((3, 4), np.inf), -ok, np.full((3, 4), "x")):
        with pytest.raises(DataError, match="hallucination_scores: counts must be pixel counts"):
            hallucination_scores(counts, names, [1])
    for classes in (["b"], 1, [1.7], [True]):
        with pytest.raises(TypeError, match="hallucination_scores: classes must be a list of class ids"):
            hallucination_scores(ok, names, classes)  # type: ignore[arg-type]
    scores = hallucination_scores(ok, names, [1])
    # 12 labelled pixels; the pixels of a and c segmented as b: 2 of them (b's own kept as b is none)
    assert (scores.pixels, scores.labelled, scores.rate) == (2, 12, 2 / 12)
    assert hallucination_scores(ok.astype(np.int64), names, np.array([1])).pixels == 2


def test_data_helpers_name_arguments_of_the_wrong_kind(tmp_path: Path) -> None:
    """`make_synthscapes(1, ...)` (the first call of the Python page's example, its folder given as an int) was
    Python's `expected str, bytes or os.PathLike object, not int`; `tensor_to_pil(a_numpy_array)` was
    `'numpy.ndarray' object has no attribute 'detach'`; `tensor_to_pil` of 8-bit pixels (a uint8 tensor of 0..255)
    clamped every value above 1 to white and returned that image without a word."""
    import numpy as np

    from srunit.data import tensor_to_pil
    from srunit.synthscapes import make_synthscapes

    with pytest.raises(TypeError, match="make_synthscapes: root must be a path"):
        make_synthscapes(1, num_pool=8, num_test=1, size=16)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got ndarray; convert a numpy array with torch.from_numpy"):
        tensor_to_pil(np.zeros((3, 4, 4), dtype=np.float32))  # type: ignore[arg-type]
    pixels = torch.tensor([0, 64, 128, 255], dtype=torch.uint8).reshape(1, 2, 2).expand(3, 2, 2)
    with pytest.raises(ValueError, match=r"torch.uint8; .* x.float\(\) / 127.5 - 1"):
        tensor_to_pil(pixels)
    image = tensor_to_pil(pixels.float() / 127.5 - 1)  # as the advice says: the same pixels back
    assert np.asarray(image)[..., 0].tolist() == [[0, 64], [128, 255]]


def test_trainer_arguments_taken_without_effect_are_refused(tiny_config: Callable[..., Config], tiny_data: Path,
                                                            tmp_path: Path) -> None:
    """`Trainer(config, overrides=["train.steps=99"])` for a config of 1 step wrote `"overrides": {"train.steps":
    "99"}` into history.jsonl as the run's own and trained 1 step (overrides only record how the config was built);
    `fit(handle_signals="no")` installed the signal handlers, a string being truthy; `fit(stop_at=np.int64(2))` was a
    TypeError where every other integer argument takes numpy's integers."""
    import numpy as np

    from srunit import Trainer

    config = tiny_config("cut", "train.steps=1", "train.name=o", data_root=tiny_data, runs_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        Trainer(config, show_progress=False, overrides=["train.steps=99", "train.name=o"])
    text = str(err.value)
    assert "train.steps 1 (the overrides say 99)" in text and "train.name" not in text, text
    assert not (tmp_path / "o").exists()
    trainer = Trainer(config, show_progress=False, overrides=["train.steps=1"])  # what config holds: recorded
    with pytest.raises(TypeError, match="Trainer.fit: handle_signals must be True or False, got str 'no'"):
        trainer.fit(handle_signals="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="stop_at 0 is not after"):
        trainer.fit(stop_at=np.int64(0))  # numpy's integer read as the integer it is
    assert trainer.fit(stop_at=np.int64(1)) == tmp_path / "o"
    assert '"overrides": {"train.steps": "1"}' in (tmp_path / "o" / "history.jsonl").read_text()


@pytest.mark.parametrize("bad", [1, None, b"runs/r"])
def test_the_run_folder_types_of_the_reference_name_a_path_of_the_wrong_type(bad: object) -> None:
    """`RunFolder(1)` and `CheckpointSource.resolve(1)` (both on the API reference page, under "Run folders") were
    Python's `expected str, bytes or os.PathLike object, not int` (bytes: `argument should be a str object ...`), as
    the main entry points' path arguments were before round sixteen (B)."""
    from srunit.runtime.run_folder import CheckpointSource, RunFolder

    with pytest.raises(TypeError, match="RunFolder: path must be a path"):
        RunFolder(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CheckpointSource.resolve: path must be a path"):
        CheckpointSource.resolve(bad)  # type: ignore[arg-type]
    assert RunFolder(Path("runs/r")).config == Path("runs/r/config.yaml")


def test_the_package_docstring_names_the_export_formats_the_docs_recommend() -> None:
    """`help(srunit)` said `export_generator` writes "an ONNX or TorchScript file": the Python page's own example
    writes a torch.export program (`.pt2`, which needs no extra), and TorchScript is the format torch deprecates."""
    import srunit

    line = next(line for line in srunit.__doc__.splitlines() if "export_generator" in line)  # type: ignore[union-attr]
    assert "torch.export" in srunit.__doc__ and ".pt2" in srunit.__doc__, line  # type: ignore[operator]
    assert "ONNX or TorchScript" not in srunit.__doc__  # type: ignore[operator]


@pytest.mark.slow
def test_an_export_of_a_run_whose_latest_moves_meanwhile_holds_the_step_it_names(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`export_generator(run, ...)` read `latest` twice: once for the file's metadata (the step it names), then again
    to load the weights. A checkpoint written between the two (a run training beside the export) gave a file that
    named one step and held another's weights. It now loads the checkpoint it resolved."""
    from srunit import Trainer, Translator, export_generator
    from srunit.runtime import run_folder

    config = tiny_config("cut", "train.steps=2", "train.checkpoint_every=1", "train.keep_every=1", "train.name=m",
                         data_root=tiny_data, runs_dir=tmp_path)
    run = Trainer(config, show_progress=False).fit()
    checkpoints = run / "checkpoints"
    os.remove(checkpoints / "latest")
    os.symlink("step_00000001", checkpoints / "latest")
    real = run_folder.CheckpointSource.resolve.__func__  # type: ignore[attr-defined]

    def resolve_then_train_on(cls: type, path: object, direction: str | None = None) -> object:
        source = real(cls, path, direction)
        if (checkpoints / "latest").resolve().name == "step_00000001":  # the trainer saves step 2 just after
            os.remove(checkpoints / "latest")
            os.symlink("step_00000002", checkpoints / "latest")
        return source

    monkeypatch.setattr(run_folder.CheckpointSource, "resolve", classmethod(resolve_then_train_on))
    report = export_generator(run, tmp_path / "g.pt2", check_sizes=[(1, 32, 32)])
    monkeypatch.undo()
    assert report.metadata["step"] == "1"
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    exported = Translator.from_checkpoint(tmp_path / "g.pt2", device="cpu").translate_tensor(x)
    step_1 = Translator.from_checkpoint(checkpoints / "step_00000001", device="cpu").translate_tensor(x)
    step_2 = Translator.from_checkpoint(checkpoints / "step_00000002", device="cpu").translate_tensor(x)
    assert not torch.allclose(step_1, step_2, atol=1e-4)  # the two steps translate apart
    assert torch.allclose(exported, step_1, atol=1e-4)
