"""srunit.export and `srunit export`: every registered method's generator to ONNX, a torch.export program and
TorchScript, checked here by running the written files directly (onnxruntime, torch.export.load, torch.jit.load)
against the
method's own generator; metadata, precisions, refusals, and translating with exported files."""

from __future__ import annotations

import errno
import json
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from srunit.app import describe_checkpoint
from srunit.cli.main import main
from srunit.errors import CheckpointError, ConfigError
from srunit.export import export_generator
from srunit.exported import is_exported_file, load_exported
from srunit.inference import Translator, load_generator
from srunit.networks.drit import DRITTranslator, LayerNorm2d
from srunit.registry import METHODS
from srunit.runtime.translation import attribute_from_seed

SMALL = ((2, 32, 32), (1, 24, 40))  # (batch, height, width) of the export-time checks, kept small for the CPU




def _onnx_run(path: Path, *args: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: a.numpy() for n, a in zip(names, args)})[0]


# The CUT-family methods with added terms export the same ResnetGenerator as cut: the full suite runs them,
# the fast tier one per kind of generator.
SAME_GENERATOR_AS_CUT = {"srunit", "cut-self-distance", "cut-smoothness", "cut-lipschitz"}
SAME_GENERATOR_AS_CYCLEGAN = {"gcgan"}  # a ResnetGenerator per direction, as CycleGAN's


# The fast tier: one method per kind of generator but DRIT's, whose ONNX export
# test_an_exported_drit_generator_takes_seeds_but_not_references checks there (TorchScript in the full suite).
@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow)
                                  if m in SAME_GENERATOR_AS_CUT | SAME_GENERATOR_AS_CYCLEGAN | {"drit"}
                                  else m for m in METHODS.names()])
def test_every_method_exports_to_onnx_and_torchscript(name: str, method_checkpoint, tmp_path: Path) -> None:
    method, run = method_checkpoint(tmp_path, name)
    generator = load_generator(run).eval()
    drit = isinstance(generator, DRITTranslator)
    # Sizes and batch other than those checked at export: the axes are dynamic.
    x = torch.rand(3, 3, 36, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    args = (x, torch.randn(3, generator.nz, generator=torch.Generator().manual_seed(2))) if drit else (x,)
    with torch.no_grad():
        expected = generator(*args)
        if drit:  # the method's own networks, not the loaded copy
            assert torch.allclose(expected, method.G.decode_b(method.E_c.encode_a(x), args[1]), atol=1e-6)
    onnx_file, ts_file = tmp_path / "g.onnx", tmp_path / "g.ts"
    report = export_generator(run, onnx_file, check_sizes=SMALL)
    assert report.max_abs_diff <= 1e-3 and len(report.checks) == 2
    assert np.abs(_onnx_run(onnx_file, *args) - expected.numpy()).max() < 1e-4
    export_generator(run, ts_file, check_sizes=SMALL)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load: the files earlier exports wrote
        traced = torch.jit.load(str(ts_file))(*args)
    assert (traced - expected).abs().max() < 1e-5

    model = onnx.load(str(onnx_file))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert inputs["image"] == ["batch", 3, "height", "width"]
    assert ("attribute" in inputs) == drit
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["method"] == name and meta["step"] == "5" and meta["opset"] == "17" and meta["precision"] == "fp32"
    assert "[-1, 1]" in meta["input"] and "multiples of 4" in meta["input"] and "[-1, 1]" in meta["output"]
    assert model.opset_import[0].version == 17


# torch.export takes seconds per generator (16 s for DRIT's on a loaded 2-core machine): the fast tier exports
# CUT's generator to .pt2 in test_translate_with_exported_files_equals_the_run, the full suite every method here.
@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_exports_a_torch_export_program(name: str, method_checkpoint, tmp_path: Path) -> None:
    """The .pt2 program, loaded with torch.export.load alone, translates sizes and batches other than those it
    was traced and checked on (its axes are dynamic) as the generator does."""
    _, run = method_checkpoint(tmp_path, name)
    generator = load_generator(run).eval()
    x = torch.rand(3, 3, 36, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    args = (x, torch.randn(3, generator.nz, generator=torch.Generator().manual_seed(2))) \
        if isinstance(generator, DRITTranslator) else (x,)
    program_file = tmp_path / "g.pt2"
    report = export_generator(run, program_file, check_sizes=SMALL)
    assert report.format == "export" and report.max_abs_diff <= 1e-3
    extra = {"srunit.json": ""}
    program = torch.export.load(str(program_file), extra_files=extra)
    with torch.no_grad():
        assert (program.module()(*args) - generator(*args)).abs().max() < 1e-5
    meta = json.loads(extra["srunit.json"])
    assert meta["method"] == name and meta["step"] == "5" and "multiples of 4" in meta["input"]


def test_two_sided_runs_export_either_direction(method_checkpoint, tmp_path: Path) -> None:
    method, run = method_checkpoint(tmp_path, "cyclegan")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    export_generator(run, tmp_path / "ba.onnx", direction="BtoA", check_sizes=SMALL)
    with torch.no_grad():
        expected = method.G_BA(x)
        assert not torch.allclose(expected, method.G(x))
    assert np.abs(_onnx_run(tmp_path / "ba.onnx", x) - expected.numpy()).max() < 1e-4
    assert {p.key: p.value for p in onnx.load(str(tmp_path / "ba.onnx")).metadata_props}["direction"] == "BtoA"


def test_reduced_precisions_keep_float32_inputs_and_outputs(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tiny_runs["cut"]
    export_generator(run, tmp_path / "h.onnx", precision="fp16", check_sizes=SMALL)
    model = onnx.load(str(tmp_path / "h.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    report = export_generator(run, tmp_path / "b.ts", precision="bf16", check_sizes=SMALL)
    assert report.metadata["precision"] == "bf16" and 0 < report.max_abs_diff <= 0.1
    with zipfile.ZipFile(tmp_path / "b.ts") as archive:
        extra = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("extra/srunit.json"))))
    assert extra["precision"] == "bf16" and extra["method"] == "cut"
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with warnings.catch_warnings():  # torch.jit.load: reading TorchScript, which torch deprecates, is tested here
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(tmp_path / "b.ts"))
    with torch.no_grad():
        assert module(x).dtype == torch.float32
        assert {p.dtype for p in module.parameters()} == {torch.bfloat16}


def test_a_failed_check_is_an_error_and_writes_nothing(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out" / "g.onnx"
    with pytest.raises(ConfigError, match=r"does not reproduce the generator.*tolerance 1e-09 for fp16.*nothing was"):
        export_generator(tiny_runs["cut"], out, precision="fp16", tolerance=1e-9, check_sizes=SMALL)
    assert list(out.parent.iterdir()) == []


def test_refusals_name_the_option(tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tiny_runs["cut"]
    existing = tmp_path / "g.onnx"
    existing.write_bytes(b"mine")
    with pytest.raises(ConfigError, match="exists already; pass --overwrite"):
        export_generator(run, existing, check_sizes=SMALL)
    assert existing.read_bytes() == b"mine"
    export_generator(run, existing, check_sizes=SMALL, overwrite=True)
    assert is_exported_file(existing)
    with pytest.raises(ConfigError, match="bf16 cannot be exported to ONNX"):
        export_generator(run, tmp_path / "b.onnx", precision="bf16")
    with pytest.raises(ConfigError, match=r"cannot tell the format from the suffix \.bin"):
        export_generator(run, tmp_path / "g.bin")
    with pytest.raises(ConfigError, match="--opset 9"):
        export_generator(run, tmp_path / "o.onnx", opset=9)
    with pytest.raises(ConfigError, match="--tolerance"):
        export_generator(run, tmp_path / "t.onnx", tolerance=float("nan"))
    with pytest.raises(ConfigError, match="is a folder"):
        export_generator(run, tmp_path)
    with pytest.raises(ConfigError, match="is an exported file already"):
        export_generator(existing, tmp_path / "again.ts", check_sizes=SMALL)
    assert main(["export", str(run), "--output", str(tmp_path / "s.onnx"), "--check-size", "30x30"]) == 2
    # the rule is the generator's own size multiple (4 for CUT's), checked where the generator is loaded
    assert "--check-size 30x30: this generator takes sides that are multiples of 4" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()


def test_layer_norm_in_onnx_export_is_the_same_normalisation() -> None:
    norm = LayerNorm2d(5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(5, 1, 1))
        norm.bias.copy_(torch.randn(5, 1, 1))
    x = torch.randn(2, 5, 6, 7) * 3 + 1
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True).add(1e-5).sqrt()
    by_hand = (x - mean) / std * norm.weight + norm.bias
    assert torch.allclose(norm(x), by_hand, atol=1e-5)
    assert torch.allclose(F.layer_norm(x, x.shape[1:]), (x - mean) / std, atol=1e-5)


@pytest.mark.parametrize("suffix", ["onnx", pytest.param("ts", marks=pytest.mark.slow),
                                    pytest.param("pt2", marks=pytest.mark.slow)])
def test_translate_with_exported_files_equals_the_run(tiny_runs: dict[str, Path], tmp_path: Path, suffix: str,
                                                      capsys: pytest.CaptureFixture) -> None:
    run = tiny_runs["srunit"]
    inp = tmp_path / "in"
    inp.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(inp / "odd.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(inp / "square.jpg")
    exported = tmp_path / f"g.{suffix}"
    assert main(["export", str(run), "--output", str(exported), "--check-size", "32x32"]) == 0
    printed = capsys.readouterr().out
    assert "max abs diff" in printed and "the srunit generator" in printed
    assert {"onnx": "ONNX opset 17", "ts": "TorchScript", "pt2": "torch.export program, fp32"}[suffix] in printed
    outputs = {}
    for name, checkpoint in (("run", run), (suffix, exported)):
        out = tmp_path / f"out_{name}"
        assert main(["translate", "--checkpoint", str(checkpoint), "--input", str(inp), "--output", str(out),
                     "--device", "cpu"]) == 0
        outputs[name] = {p.name: np.asarray(Image.open(p)).astype(int) for p in sorted(out.iterdir())}
    assert sorted(outputs["run"]) == ["odd.png", "square.png"]
    for file, pixels in outputs["run"].items():
        assert outputs[suffix][file].shape == pixels.shape
        assert np.abs(outputs[suffix][file] - pixels).max() <= 1, file
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(exported), "--input", str(inp), "--output",
                 str(tmp_path / "x"), "--precision", "fp16"]) == 2
    assert "precision was fixed at export" in capsys.readouterr().err
    assert main(["translate", "--checkpoint", str(exported), "--input", str(inp), "--output",
                 str(tmp_path / "x"), "--direction", "BtoA"]) == 2
    assert "(its srunit run has no B -> A generator srunit exports: two-sided methods such as cyclegan have one)" in \
        capsys.readouterr().err
    assert describe_checkpoint(exported).label == f"g.{suffix} · srunit (exported) · step 1"


def test_an_exported_drit_generator_takes_seeds_but_not_references(method_checkpoint, tmp_path: Path) -> None:
    method, run = method_checkpoint(tmp_path, "drit")
    export_generator(run, tmp_path / "d.onnx", check_sizes=SMALL)
    tr = Translator.from_checkpoint(tmp_path / "d.onnx", device="cpu")
    assert tr.multimodal
    x = torch.rand(2, 3, 30, 26) * 2 - 1  # not multiples of 4: padded and cropped back
    with torch.no_grad():
        padded = F.pad(x, (0, 2, 0, 2), mode="reflect")
        expected = method.G.decode_b(method.E_c.encode_a(padded), attribute_from_seed(4, 8)[None].expand(2, -1))
    assert torch.allclose(tr.translate_tensor(x, attribute=4), expected[..., :30, :26], atol=1e-4)
    assert not torch.allclose(tr.translate_tensor(x, attribute=4), tr.translate_tensor(x, attribute=5))
    with pytest.raises(ConfigError, match="holds the generator only"):
        tr.attribute_code(Image.new("RGB", (32, 32)), "--reference")


def test_damaged_or_foreign_files(tmp_path: Path, tiny_runs: dict[str, Path]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="could not be loaded by onnxruntime"):
        load_exported(bad)
    bad_ts = tmp_path / "bad.ts"
    bad_ts.write_bytes(b"PK nothing")
    with pytest.raises(CheckpointError, match="could not be loaded as TorchScript"):
        load_exported(bad_ts)
    # A TorchScript archive named .pt is exported; a plain state dict named .pt is not.
    export_generator(tiny_runs["cut"], tmp_path / "g.pt", check_sizes=SMALL)
    assert is_exported_file(tmp_path / "g.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "state.pt")
    assert not is_exported_file(tmp_path / "state.pt")


def test_the_app_serves_an_exported_file_beside_its_run(tiny_runs: dict[str, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import srunit.app
    import srunit.inference
    from srunit.app import TranslationDemo

    run = tiny_runs["cut"]
    export_generator(run, tmp_path / "cut.onnx", check_sizes=SMALL)
    loads = []
    for module in (srunit.app, srunit.inference):  # the page opens the file once: its label comes from that load
        real = module.load_exported
        monkeypatch.setattr(module, "load_exported", lambda *a, real=real, **k: loads.append(a[0]) or real(*a, **k))
    demo = TranslationDemo.from_checkpoints([run, tmp_path / "cut.onnx"], device="cpu")
    assert demo.labels[1] == "cut.onnx · cut (exported) · step 1" and loads == [tmp_path / "cut.onnx"]
    upload = tmp_path / "up.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 42, 3), dtype=np.uint8)).save(upload)
    from_run, from_file = (np.asarray(im).astype(int) for im in demo.translate_file(upload))
    assert from_run.shape == from_file.shape == (30, 42, 3) and np.abs(from_run - from_file).max() <= 1


def test_a_checkpoint_with_nan_weights_is_not_exported(tmp_path: Path) -> None:
    from srunit.networks import ResnetGenerator
    from srunit.runtime.network_files import save_network

    g = ResnetGenerator(ngf=4, n_blocks=1)
    with torch.no_grad():
        g.layers[1].weight[0, 0, 0, 0] = float("inf")
    save_network(g, tmp_path / "G.safetensors", "ResnetGenerator")
    out = tmp_path / "out" / "g.onnx"
    with pytest.raises(CheckpointError, match=r"G\.safetensors: the weights hold NaN or inf values \(first in "
                                              r"layers\.1\.weight\)"):
        export_generator(tmp_path / "G.safetensors", out, check_sizes=SMALL)
    assert not out.exists()


@pytest.mark.parametrize(("key", "value", "says"), [  # one key in the fast tier: each case exports again
    ("size_multiple", str(10**9), "its metadata 'size_multiple' '1000000000' is not an integer from 1 to 256"),
    pytest.param("nz", str(10**12), "its metadata 'nz' '1000000000000' is not an integer from 1 to 4096",
                 marks=pytest.mark.slow),
    pytest.param("nz", "eight", "its metadata 'nz' 'eight' is not an integer from 1 to 4096", marks=pytest.mark.slow),
])
def test_sizes_in_an_exported_files_metadata_are_bounded(tiny_runs: dict[str, Path], tmp_path: Path, key: str,
                                                         value: str, says: str) -> None:
    out = tmp_path / "g.pt"
    export_generator(tiny_runs["cut"], out, "torchscript", check_sizes=SMALL)
    extra = {"srunit.json": ""}
    with warnings.catch_warnings():  # rewriting a TorchScript file's metadata (torch deprecates TorchScript)
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(out), _extra_files=extra)
        metadata = {**json.loads(extra["srunit.json"]), key: value}
        torch.jit.save(module, str(out), _extra_files={"srunit.json": json.dumps(metadata)})
    with pytest.raises(CheckpointError, match=re.escape(f"{out}: {says}")):
        Translator.from_checkpoint(out, device="cpu")


@pytest.mark.parametrize("suffix", [".onnx", pytest.param(".pt2", marks=pytest.mark.slow), ".ts"])
def test_a_full_disk_during_any_export_leaves_no_partial_or_lock_file(suffix: str, tiny_runs: dict[str, Path],
                                                                       tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up half-way through the file: the error names the file and the full disk, and the folder
    holds nothing of the export (no temporary file, no lock)."""
    from srunit import export as export_module

    real = export_module._write_bytes

    def half_then_full(path: Path, data: bytes | memoryview, *into: object) -> None:
        real(path, bytes(data)[: len(data) // 2], *into)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export_module, "_write_bytes", half_then_full)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", str(tiny_runs["cut"]), "--output", str(out / f"g{suffix}"), "--check-size", "32x32"]) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


@pytest.mark.fault
@pytest.mark.parametrize("suffix", [".pt2", ".ts", ".onnx"])
def test_a_file_size_limit_during_export_is_an_error_not_a_native_abort(suffix: str, tiny_runs: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    """A real refused write (RLIMIT_FSIZE: the kernel answers EFBIG, as it answers ENOSPC on a full disk) in a
    subprocess: torch's archive writer aborted the process (SIGABRT) when it met one; the export now builds the
    archive in memory and Python's write reports the refusal."""
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "srunit", "export", str(tiny_runs["cut"]), "--output",
                           str(out / f"g{suffix}"), "--check-size", "32x32"], preexec_fn=limit, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "File too large" in done.stderr and "Traceback" not in done.stderr
    assert list(out.iterdir()) == []
