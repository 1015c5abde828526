"""Round fifteen (B): the shipped benchmark scripts, the data commands and the web app, each defect the round found."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from srunit._outputs import building_folder
from srunit.data import image_size, load_rgb
from srunit.errors import DataError
from srunit.synthscapes import make_synthscapes

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _script(name: str, *args: str | Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode != 0, done.stdout[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr[-2000:]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels (its pixel data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.e2e
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_sh_says_in_one_line_what_it_lacks(tmp_path: Path) -> None:
    public = tmp_path / "public"
    (public / "models").mkdir(parents=True)
    (public / "models" / "srunit_model.py").write_text("")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    no_gpu = subprocess.run(["bash", str(BENCH / "gpu.sh"), str(public), str(tmp_path / "out")], capture_output=True,
                            text=True, env=env, timeout=120)
    _one_line_error(no_gpu, "sees no CUDA device")
    no_code = subprocess.run(["bash", str(BENCH / "gpu.sh"), str(tmp_path / "missing"), str(tmp_path / "out")],
                             capture_output=True, text=True, env=env, timeout=60)
    _one_line_error(no_code, "is not a checkout of the public SRUNIT code")
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
def test_speed_vs_public_refuses_what_it_cannot_measure_before_measuring(tmp_path: Path) -> None:
    base = ("--size", "32", "--presets", "cut", "--variants", "fp32", "--steps", "1", "--warmup", "1")
    _one_line_error(_script("speed_vs_public.py", "--public", tmp_path / "missing", "--device", "cpu", *base,
                            "--out", tmp_path / "a"), "--public", "not a checkout of the public SRUNIT code")
    _one_line_error(_script("speed_vs_public.py", "--device", "cpu", "--rounds", "0", *base, "--out", tmp_path / "b"),
                    "--rounds 0")
    _one_line_error(_script("speed_vs_public.py", "--device", "cpu", "--batch-sizes", "abc", *base,
                            "--out", tmp_path / "c"), "--batch-sizes 'abc'")
    (tmp_path / "file").write_text("keep")
    _one_line_error(_script("speed_vs_public.py", "--device", "cpu", *base, "--out", tmp_path / "file"),
                    "is a file")
    assert (tmp_path / "file").read_text() == "keep"
    if not torch.cuda.is_available():
        _one_line_error(_script("speed_vs_public.py", "--device", "cuda", *base, "--out", tmp_path / "d"),
                        "--device cuda", "no CUDA device")
    assert not any((tmp_path / x).exists() for x in "abcd")


@pytest.mark.e2e
def test_speed_vs_public_fails_when_a_measurement_fails(tmp_path: Path) -> None:
    done = _script("speed_vs_public.py", "--device", "cpu", "--size", "32", "--presets", "no-such-preset",
                   "--variants", "fp32", "--rounds", "1", "--steps", "1", "--warmup", "1", "--out", tmp_path)
    _one_line_error(done, "1 measurement(s) failed")  # it printed an empty table and exited 0


@pytest.mark.e2e
def test_preset_hashes_refuses_a_bad_compare_file_before_training_and_names_a_failing_preset(tmp_path: Path) -> None:
    _one_line_error(_script("preset_hashes.py", "--out", tmp_path / "a.json", "--compare", tmp_path / "none.json",
                            "--presets", "cut"), "--compare", "none.json")
    assert not (tmp_path / "a.json").exists()  # refused before the minutes of training, not after
    _one_line_error(_script("preset_hashes.py", "--out", tmp_path / "b.json", "--presets", "no-such-preset"),
                    "preset 'no-such-preset'", "unknown preset")


@pytest.mark.e2e
def test_preset_matches_trial_names_a_record_it_cannot_read(tmp_path: Path) -> None:
    _one_line_error(_script("preset_matches_trial.py", "cut", tmp_path / "none.json"), "record", "none.json")
    (tmp_path / "list.json").write_text("[1]")
    _one_line_error(_script("preset_matches_trial.py", "cut", tmp_path / "list.json"), "not a tuning trial's record")
    trial = ROOT / "studies" / "tune-long-cut" / "trials" / "cut-f846791e5aa2.json"
    _one_line_error(_script("preset_matches_trial.py", "cut", trial, "--profile", "nosuch"), "unknown profile 'nosuch'")
    _one_line_error(_script("preset_matches_trial.py", tmp_path / "none.yaml", trial), "none.yaml")


@pytest.mark.e2e
def test_robust_gradient_share_names_a_bad_run_or_batch_count(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    _one_line_error(_script("robust_gradient_share.py", tmp_path / "missing"), "not a run folder")
    _one_line_error(_script("robust_gradient_share.py", tiny_runs["cut"], "--batches", "0"), "--batches 0")
    _one_line_error(_script("robust_gradient_share.py", tiny_runs["cut"], "--batches", "1000"), "--batches 1000")
    moved = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], moved, symlinks=True)
    config = moved / "config.yaml"
    config.write_text(config.read_text().replace("root: ", f"root: {tmp_path / 'gone'}  # ", 1))
    _one_line_error(_script("robust_gradient_share.py", moved, "--batches", "1"), "gone")


def _plan_confirmatory():
    spec = importlib.util.spec_from_file_location("plan_confirmatory", BENCH / "plan_confirmatory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args, fragment", [
    (["--alpha", "2"], "--alpha 2.0"),  # it printed "pairs for 80% power: 3"
    (["--power", "0"], "--power 0.0"),
    (["--pairs", "1"], "--pairs 1"),  # it printed "1 pairs detect |effect| >= 0.0000"
    ([], "holds no trial records"),  # a folder without trials: max() of an empty sequence, a traceback
])
def test_plan_confirmatory_refuses_values_it_cannot_size_a_study_with(monkeypatch, capsys, tmp_path: Path,
                                                                      args: list[str], fragment: str) -> None:
    for study in ("a", "b"):
        (tmp_path / study / "trials").mkdir(parents=True)
        if args:
            for seed in range(3):
                (tmp_path / study / "trials" / f"{seed}.json").write_text(json.dumps(
                    {"seed": seed, "scores": {"mean_iou": 0.4 + 0.01 * seed}}))
    monkeypatch.setattr(sys, "argv", ["plan_confirmatory.py", str(tmp_path / "a"), str(tmp_path / "b"), *args])
    with pytest.raises(SystemExit) as exit_:
        _plan_confirmatory().main()
    assert exit_.value.code == 2 and fragment in capsys.readouterr().err


def test_synthscapes_takes_every_seed_it_accepts(tmp_path: Path) -> None:
    # --seed 2**32 (accepted, up to 2**64 - 1) ended in sklearn's traceback about K-means' random_state
    for seed in (2**32, 2**64 - 1):
        manifest = make_synthscapes(tmp_path / str(seed), num_pool=12, num_test=1, size=16, seed=seed)
        assert manifest["seed"] == seed and len(manifest["trainA"]["pool_indices"]) > 0


def test_an_image_header_past_pillows_own_limit_is_refused_like_any_image_over_the_limit(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header(60_000, 60_000))  # 3.6e9 pixels: Pillow refuses it before srunit's check ran
    for read in (lambda: image_size(huge, max_pixels=16_777_216), lambda: load_rgb(huge, max_pixels=16_777_216)):
        with pytest.raises(DataError) as error:
            read()
        assert "is 3,600,000,000 pixels, more than the limit of 16,777,216" in str(error.value)
        assert "decompression bomb DOS attack" not in str(error.value)  # Pillow's words, and "replace the file"


def test_the_app_refuses_an_upload_past_pillows_limit_with_its_own_message(tiny_runs: dict[str, Path],
                                                                             tmp_path: Path) -> None:
    from srunit.app import TranslationDemo

    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header(60_000, 60_000))
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    with pytest.raises(DataError) as error:
        demo.translate_file(huge)
    # it said "DecompressionBombError: ...; upload a PNG, JPEG, BMP, GIF, TIFF or WebP image" of a PNG
    assert "huge.png is 3,600,000,000 pixels, more than this app's limit of 16,777,216" in str(error.value)


@pytest.mark.e2e
def test_parity_vs_public_names_a_partial_checkout_and_refuses_zero_steps(tmp_path: Path) -> None:
    public = tmp_path / "public"
    (public / "models").mkdir(parents=True)
    (public / "models" / "srunit_model.py").write_text("")  # the marker file only: `import models.networks` fails
    _one_line_error(_script("parity_vs_public.py", "--public", public, "--cases", "small", "--dtypes", "float64"),
                    f"--public {public}: importing the public code failed", "give a whole checkout")
    for option in ("--steps", "--threads"):  # 0 ran the default 20 steps and torch's threads without a word
        _one_line_error(_script("parity_vs_public.py", "--public", public, option, "0"), f"{option} 0")


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_a_folder_a_data_command_builds_gets_the_umask_not_0700(monkeypatch, tmp_path: Path, mask: int) -> None:
    import srunit._atomic as atomic

    monkeypatch.setattr(atomic, "_UMASK", mask)  # as a process started under `umask 022` / `umask 077` reads it
    out = tmp_path / "synthscapes"
    with building_folder(out, "--out") as tmp:  # as `data synthscapes --out` (and split, mismatch, cityscapes)
        make_synthscapes(tmp, num_pool=12, num_test=1, size=16)
    # it was 0700 (mkdtemp's mode) whatever the umask: a data set no one else on the machine could read
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask
