"""srunit.eval.segmenters: loading a segmenter from TorchScript, ONNX or a Python function."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from srunit.errors import ConfigError
from srunit.eval import load_segmenter


def _identity_conv() -> torch.nn.Module:
    conv = torch.nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    return conv.eval()


def _onnx_identity(path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_identity_conv(), (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "h", 3: "w"}})
    except Exception:  # noqa: BLE001 - any exporter failure: build the same 1x1 conv by hand
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        w = numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "w")
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])], [w])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_load_segmenter_three_forms(tmp_path: Path, python_segmenter: Path, rgb_strip) -> None:
    image, ids = rgb_strip
    ts = tmp_path / "seg.pt"
    with warnings.catch_warnings():  # TorchScript, deprecated by torch, is one of the forms users bring
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(_identity_conv(), torch.zeros(1, 3, 2, 2)).save(str(ts))
    onnx_path = tmp_path / "seg.onnx"
    _onnx_identity(onnx_path)
    py = python_segmenter
    for spec in (str(ts), str(onnx_path), f"{py}:segment"):
        out = load_segmenter(spec)(image)
        assert out.shape == (1, 4) and out.dtype == np.int64, spec
        assert out.tolist() == ids, spec
    with pytest.raises(ConfigError, match="expected an integer"):
        load_segmenter(f"{py}:bad")(image)


def test_load_segmenter_errors(tmp_path: Path, python_segmenter: Path) -> None:
    with pytest.raises(ConfigError, match="no known form.*accepted --segmenter forms"):
        load_segmenter("deeplab")
    with pytest.raises(ConfigError, match="does not exist.*accepted"):
        load_segmenter(str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="no_such_module_xyz.*ModuleNotFoundError"):
        load_segmenter("no_such_module_xyz:f")
    py = python_segmenter
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        load_segmenter(f"{py}:nope")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot load TorchScript"):
        load_segmenter(str(junk))


def test_a_segmenter_with_another_number_of_channels_than_classes_is_refused(tmp_path: Path, rgb_strip) -> None:
    """An argmax over 3 channels scored as 5 classes is garbage without an error: refused on the first image."""
    image, ids = rgb_strip
    onnx_path = tmp_path / "seg.onnx"
    _onnx_identity(onnx_path)
    assert load_segmenter(str(onnx_path), num_classes=3)(image).tolist() == ids
    with pytest.raises(ConfigError, match=r"outputs 3 channels \(classes\) but --classes is 5; pass --classes 3"):
        load_segmenter(str(onnx_path), num_classes=5)(image)
