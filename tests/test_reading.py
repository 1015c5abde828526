"""Reads with a bound (issue 24, part 2): every file srunit reads is refused before it is read when it is not a
regular file (a FIFO would block, /dev/zero never end), every size is bounded by a constant the file cannot
raise, and invalid bytes or JSON nested 100,000 levels deep are one-line errors naming the file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from srunit.errors import CheckpointError, ConfigError, DataError

posix = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "mkfifo"), reason="FIFOs and /dev/zero: POSIX")

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def fifo(tmp_path: Path):
    """``(name) -> path`` of a FIFO without a writer: opening it for reading the ordinary way blocks forever."""

    def make(name: str) -> Path:
        path = tmp_path / name
        os.mkfifo(path)
        return path

    return make


@pytest.fixture
def zero_link(tmp_path: Path):
    """``(name) -> path`` of a symbolic link to /dev/zero: a file that never ends."""

    def make(name: str) -> Path:
        path = tmp_path / name
        path.symlink_to("/dev/zero")
        return path

    return make


# ----------------------------------------------------------------------------- the reader


@posix
def test_a_fifo_and_a_link_to_dev_zero_are_refused_before_reading(fifo, zero_link) -> None:
    from srunit._reading import check_regular_file, read_bytes

    with pytest.raises(DataError, match="is a FIFO"):
        read_bytes(fifo("x.json"), "the record", limit=100)
    with pytest.raises(DataError, match=r"is a character device \(it points to /dev/zero\)"):
        read_bytes(zero_link("y.json"), "the record", limit=100)
    with pytest.raises(ConfigError, match="is a FIFO"):
        check_regular_file(fifo("z.png"), "--reference", error=ConfigError)


def test_a_file_over_the_limit_is_refused_and_never_read_past_it(tmp_path: Path) -> None:
    from srunit._reading import read_bytes

    path = tmp_path / "big.json"
    path.write_bytes(b"1" * 101)
    with pytest.raises(DataError, match="101 bytes or more, more than the 100"):
        read_bytes(path, "the record", limit=100)
    assert read_bytes(path, "the record", limit=101) == b"1" * 101


def test_invalid_bytes_and_deep_nesting_are_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    from srunit._reading import MAX_JSON_DEPTH, parse_json, read_json

    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    with pytest.raises(DataError, match=r"bad.json is not UTF-8 text \(byte 0xff on line 2\)"):
        read_json(bad, "the record")
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    with pytest.raises(DataError, match=f"deep.json nests JSON more than {MAX_JSON_DEPTH} levels"):
        read_json(deep, "the record")
    # Deep but under the interpreter's recursion limit: parsed, then refused all the same (the nesting would
    # break whatever reads it next).
    with pytest.raises(CheckpointError, match="nests JSON"):
        parse_json("[" * 500 + "]" * 500, "x", error=CheckpointError)
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x") == json.loads("[" * MAX_JSON_DEPTH +
                                                                                    "]" * MAX_JSON_DEPTH)


def test_json_lines_keep_a_cut_line_and_refuse_a_deep_one(tmp_path: Path) -> None:
    from srunit._reading import json_lines

    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1}\n{"step": 2, "lo')
    assert list(json_lines(log, "the log")) == [('{"step": 1}\n', {"step": 1}), ('{"step": 2, "lo', None)]
    log.write_text('{"step": 1}\n' + DEEP + "\n")
    with pytest.raises(DataError, match=r"metrics.jsonl \(line 2\) nests JSON"):
        list(json_lines(log, "the log"))


# ----------------------------------------------------------------------------- every option that reads a file


@posix
def test_a_yaml_config_and_a_search_space_that_are_fifos_are_refused(fifo) -> None:
    import argparse

    from srunit.cli.tune import _space
    from srunit.config import read_preset

    with pytest.raises(ConfigError, match="config file .*cfg.yaml is a FIFO"):
        read_preset(fifo("cfg.yaml"))
    with pytest.raises(ConfigError, match="--space .*space.yaml is a FIFO"):
        _space(argparse.Namespace(space=fifo("space.yaml"), preset="cut"), None)


@posix
def test_reference_images_label_maps_and_segmenters_that_are_not_regular_files_are_refused(fifo, zero_link) -> None:
    from srunit.data import load_rgb
    from srunit.data.labels import load_label_map
    from srunit.eval.segmenters import load_segmenter

    with pytest.raises(DataError, match="image file .*ref.png is a FIFO"):
        load_rgb(fifo("ref.png"))
    with pytest.raises(DataError, match="label map .*lab.png is a character device"):
        load_label_map(zero_link("lab.png"))
    with pytest.raises(ConfigError, match="segmenter file .*seg.onnx is a FIFO"):
        load_segmenter(str(fifo("seg.onnx")))
    with pytest.raises(ConfigError, match="seg.py is a character device"):
        load_segmenter(f"{zero_link('seg.py')}:make")


@posix
def test_checkpoints_network_files_and_training_states_that_are_not_regular_files_are_refused(
        tmp_path: Path, fifo, zero_link) -> None:
    from srunit.engine.checkpoint import load_training_state
    from srunit.runtime import read_network_metadata
    from srunit.runtime.run_folder import CheckpointSource

    with pytest.raises(CheckpointError, match="G.safetensors is a FIFO"):
        read_network_metadata(fifo("G.safetensors"))
    with pytest.raises(CheckpointError, match=r"net_G.pth is a character device"):
        CheckpointSource.resolve(zero_link("latest_net_G.pth"))
    step = tmp_path / "step_00000001"
    step.mkdir()
    (step / "state.pt").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="state.pt is a character device"):
        load_training_state(step)


def test_records_with_invalid_bytes_or_deep_json_are_one_line_errors(tmp_path: Path) -> None:
    from srunit.eval.records import read_run_record
    from srunit.eval.study_records import read_record
    from srunit.report.runs import load_metrics

    (tmp_path / "scores.json").write_bytes(b'{"format": "\xfe"}')
    with pytest.raises(DataError, match="scores.json is not UTF-8"):
        read_run_record(tmp_path)
    (tmp_path / "rec.json").write_text(DEEP)
    with pytest.raises(DataError, match="rec.json nests JSON"):
        read_record(tmp_path / "rec.json")
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n' + DEEP + "\n")
    with pytest.raises(DataError, match="metrics.jsonl line 2 nests JSON"):
        load_metrics(tmp_path / "metrics.jsonl")
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1, "loss": 1.0}\n\x80\n')
    with pytest.raises(DataError, match="metrics.jsonl is not UTF-8"):
        load_metrics(tmp_path / "metrics.jsonl")


# ----------------------------------------------------------------------------- network files


def _network_file(path: Path, tensors: dict[str, torch.Tensor], config: str) -> Path:
    save_file(tensors, str(path), metadata={"format": "srunit", "network": "ResnetGenerator", "config": config})
    return path


def test_empty_tensors_cannot_raise_the_bound_on_a_network_config(tmp_path: Path) -> None:
    """A forged file: one empty tensor with a dimension of a billion (no bytes) once lifted the bound on the config's
    integers to a billion, so ngf=10**9 passed to the network's constructor; it is refused before anything is
    built."""
    from srunit.runtime import load_network

    config = json.dumps({"input_nc": 3, "output_nc": 3, "ngf": 10**9, "n_blocks": 1})
    path = _network_file(tmp_path / "G.safetensors", {"x": torch.zeros(1), "empty": torch.zeros(0, 10**9)}, config)
    with pytest.raises(CheckpointError, match=r"ngf = 1000000000 in its metadata config is more than"):
        load_network(path)


@pytest.mark.slow  # 2.7 s: a deep JSON and a forged size; the other damaged-file cases above are its fast relatives
def test_a_network_file_with_deep_json_metadata_or_a_forged_header_size_is_one_line_error(tmp_path: Path) -> None:
    from srunit.runtime import read_network_metadata

    path = _network_file(tmp_path / "G.safetensors", {"x": torch.zeros(1)}, DEEP)
    with pytest.raises(CheckpointError, match="metadata 'config' nests JSON"):
        read_network_metadata(path)
    forged = tmp_path / "F.safetensors"
    forged.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header size of 1,099,511,627,776 bytes does not fit"):
        read_network_metadata(forged)
    many = tmp_path / "M.safetensors"
    header = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(100_001)})
    many.write_bytes(len(header).to_bytes(8, "little") + header.encode())
    with pytest.raises(CheckpointError, match="100,001 tensors"):
        read_network_metadata(many)


def test_a_label_list_file_that_is_not_utf8_names_the_option(tmp_path: Path) -> None:
    from srunit.eval.run_records import resolve_class_names

    names = tmp_path / "names.txt"
    names.write_bytes(b"road\n\xffsky\n")
    with pytest.raises(ConfigError, match=r"--class-names .*names.txt is not UTF-8 text \(byte 0xff on line 2\)"):
        resolve_class_names(str(names), 2)


def test_images_are_still_read(tmp_path: Path) -> None:
    """The regular-file check leaves ordinary images (and links to them) readable."""
    from srunit.data import load_rgb

    Image.fromarray(np.full((4, 5, 3), 7, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert load_rgb(tmp_path / "b.png").size == (5, 4)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # writes a TorchScript file as older srunit did
def test_an_exported_file_with_deep_json_metadata_is_one_line_error(tmp_path: Path) -> None:
    from srunit.exported import EXTRA_FILE, load_torchscript

    path = tmp_path / "g.ts"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path), _extra_files={EXTRA_FILE: DEEP})
    with pytest.raises(CheckpointError, match=f"g.ts: its {EXTRA_FILE} nests JSON"):
        load_torchscript(path, torch.device("cpu"))


@posix
def test_digests_read_in_blocks_and_refuse_what_never_ends(tmp_path: Path, zero_link,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An image set's digest (records, tuning identities) holds at most a block of any file in memory."""
    import hashlib

    from srunit._reading import file_digest
    from srunit.eval.records import image_set_digest

    folder = tmp_path / "images"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "a.png", compress_level=0)
    data = (folder / "a.png").read_bytes()
    assert len(data) > 2**20
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    assert file_digest(folder / "a.png", "image") == hashlib.sha256(data).hexdigest()
    assert len(image_set_digest(folder)) == 64
    assert reads and max(reads) <= 2**20
    with pytest.raises(DataError, match="character device"):
        file_digest(zero_link("z.png"), "--segmenter")


def test_a_study_record_of_many_classes_that_it_wrote_is_read_back(tmp_path: Path) -> None:
    """A record embeds its run's evaluation record: its read bound is that record's, not a few MiB below it."""
    from srunit.eval.study_records import read_record, record_path, write_record

    classes = 800  # a confusion matrix of 640,000 counts: about 5 MB of JSON
    evaluation = {"format": "srunit-eval/1", "segmentation": {
        "mean_iou": 0.5, "confusion_matrix": [[123456] * classes for _ in range(classes)]}}
    write_record(tmp_path, "run", {"config": {}}, 1, evaluation, commit=None, version="0", machine="m",
                 train_minutes=None)
    assert record_path(tmp_path, "run").stat().st_size > 4 * 2**20
    assert read_record(record_path(tmp_path, "run"))["scores"] == {"mean_iou": 0.5}
