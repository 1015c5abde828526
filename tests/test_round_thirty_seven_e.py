"""Round thirty-seven (E): the evaluation API's defects of probe 37i (D10-D14, D21): `score_segmentation`'s class
maps written over its inputs, `paired_scores` and `fid_kid` with one folder inside the other, `fid_kid`'s feature
contract and seed, and a writer's repr in a message."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.errors import ConfigError, DataError


def _images(folder: Path, count: int, seed: int = 0, size: int = 8) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def _labels(folder: Path, count: int, size: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size), i % 4, np.uint8), mode="L").save(folder / f"{i:02d}.png")
    return folder


def _contents(*folders: Path) -> dict[Path, str]:
    """Every file below ``folders`` with the digest of its bytes."""
    return {path: hashlib.md5(path.read_bytes()).hexdigest()
            for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()}


def _segment(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] // 64).astype(np.int64)


@pytest.mark.parametrize(("where", "said"), [
    ("labels", r"predicted .*labels is --labels .*labels: the class maps would be written over or among its label "
               r"maps; pass predicted a folder outside both \(nothing was written\)"),
    ("images", r"predicted .*images is --images .*images: the class maps would be written over or among its images"),
    ("images/new", r"predicted .*images/new lies inside --images .*images: "),
    ("labels/sub", r"predicted .*labels/sub lies inside --labels "),
    (".", r"predicted .* holds --images .*images: its images would be among the class maps"),
])
def test_score_segmentation_refuses_predicted_over_among_or_around_its_inputs(tmp_path: Path, where: str,
                                                                              said: str) -> None:
    """`score_segmentation("ss/testB", "ss/testLabels", seg, 8, predicted="ss/testLabels")`: status 0, no word, and
    every label map in ss/testLabels replaced by the segmenter's class map; `predicted="ss/testB"` replaced the images
    too and then scored `1.0` (the predictions against themselves) (probe 37i, D10, class a)."""
    from srunit.eval.scoring import score_segmentation

    images, labels = _images(tmp_path / "images", 3), _labels(tmp_path / "labels", 3)
    (labels / "sub").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(labels / "sub" / "03.png")
    (images / "sub").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "sub" / "03.png")
    before = _contents(images, labels)
    with pytest.raises(DataError, match=said):
        score_segmentation(images, labels, _segment, 4, predicted=tmp_path / where)
    assert _contents(images, labels) == before  # nothing written, nothing replaced
    assert not (tmp_path / "images" / "new").exists()
    assert not list(tmp_path.glob("*.png"))
    # A folder beside them is taken, and holds the class maps.
    result = score_segmentation(images, labels, _segment, 4, predicted=tmp_path / "pred")
    assert result.num_images == 4
    assert sorted(p.relative_to(tmp_path / "pred").as_posix() for p in (tmp_path / "pred").rglob("*.png")) == \
        ["00.png", "01.png", "02.png", "sub/03.png"]
    assert _contents(images, labels) == before


def test_score_segmentation_replaces_existing_class_maps_only_when_asked(tmp_path: Path) -> None:
    """`score_segmentation(..., predicted=FOLDER)` replaced the files of the same name in any folder of the user's
    without a check, where `translate_folder` replaces existing outputs only with `overwrite=True` (probe 37i, D10).
    The advice, followed, replaces them; a file of another name is left."""
    from srunit.eval.scoring import score_segmentation

    images, labels = _images(tmp_path / "images", 2), _labels(tmp_path / "labels", 2)
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "01.png").write_bytes(b"mine")
    (pred / "notes.txt").write_text("keep")
    with pytest.raises(DataError, match=r"^1 class map file\(s\) exist already in predicted .*pred \(first: .*pred/"
                                        r"01.png\); pass overwrite=True to replace them, or choose another predicted "
                                        r"folder \(nothing was written\)$"):
        score_segmentation(images, labels, _segment, 4, predicted=pred)
    assert (pred / "01.png").read_bytes() == b"mine"
    assert not (pred / "00.png").exists()
    score_segmentation(images, labels, _segment, 4, predicted=pred, overwrite=True)
    want = _segment(np.asarray(Image.open(images / "01.png").convert("RGB")))
    assert np.array_equal(np.asarray(Image.open(pred / "01.png")), want)
    assert (pred / "notes.txt").read_text() == "keep"
    with pytest.raises(TypeError, match="^score_segmentation: overwrite must be True or False"):
        score_segmentation(images, labels, _segment, 4, predicted=pred, overwrite="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("pred_inside", [True, False])
def test_paired_scores_refuses_one_folder_inside_the_other(tmp_path: Path, pred_inside: bool) -> None:
    """`paired_scores('nestp/t/pred', 'nestp/t')`: `4 target file(s) have no prediction partner ...: nestp/t/pred/
    0000.png, ...; add the missing files or remove these`: "these" were the predictions (probe 37i, D11). The API
    names the nesting, as `eval paired` does (its one owner)."""
    from srunit.eval.paired import paired_scores

    outer = _images(tmp_path / "t", 3)
    inner = _images(outer / "pred", 3, seed=1)
    pred, target = (inner, outer) if pred_inside else (outer, inner)
    outer_name, inner_name = ("--target", "--pred") if pred_inside else ("--pred", "--target")
    with pytest.raises(DataError) as caught:
        paired_scores(pred, target)
    said = str(caught.value)
    assert said.startswith(f"{outer_name} {outer} holds {inner_name} {inner} (folders are read with their "
                           f"sub-folders), so the inner one's images would be read as the outer one's too"), said
    assert "remove these" not in said and "\n" not in said
    # Side by side they are scored.
    assert paired_scores(inner, _images(tmp_path / "side", 3, seed=1)).dist == 0.0


class _Mean(torch.nn.Module):
    """(N, 3, H, W) uint8 -> (N, 3): the mean of each channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean((2, 3))


_KID = {"kid_subset_size": 2, "kid_subsets": 2}


@pytest.mark.parametrize("real_inside", [True, False])
def test_fid_kid_refuses_one_folder_inside_the_other_and_keeps_one_folder_twice(tmp_path: Path,
                                                                              real_inside: bool) -> None:
    """`fid_kid("nestp/t", "nestp/t/pred", feature=F())`: `FidKidScores(fid=751.75, ..., num_real=8, num_fake=4)`:
    the 4 translations were counted among the real images, without a word (probe 37i, D12)."""
    from srunit.eval.fid import fid_kid

    outer = _images(tmp_path / "t", 4)
    inner = _images(outer / "pred", 4, seed=1)
    real, fake = (inner, outer) if real_inside else (outer, inner)
    outer_name, inner_name = ("--fake", "--real") if real_inside else ("--real", "--fake")
    with pytest.raises(DataError, match=rf"^{outer_name} {outer} holds {inner_name} {inner} \(folders are read with "
                                        rf"their sub-folders\), so the images of the inner one would be counted in "
                                        rf"both sets; pass two folders, neither inside the other$"):
        fid_kid(real, fake, feature=_Mean(), **_KID)
    # One folder twice stays the documented sanity check of a feature network: FID 0.
    same = fid_kid(inner, inner, feature=_Mean(), **_KID)
    assert same.fid == pytest.approx(0.0, abs=1e-3) and same.num_real == same.num_fake == 4


def test_fid_kid_refuses_features_that_are_not_finite(tmp_path: Path) -> None:
    """A feature module returning NaN: `Intel oneMKL ERROR ... DGEBAL`, then `FidKidScores(fid=0.0, kid_mean=nan,
    ...)`, no exception: FID 0.0 reads as identical distributions (probe 37i, D13)."""
    from srunit.eval.fid import fid_kid

    class Nan(torch.nn.Module):
        num_features = 3

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = x.float().mean((2, 3))
            out[0, 1] = float("nan")
            return out

    real, fake = _images(tmp_path / "real", 3), _images(tmp_path / "fake", 3, seed=1)
    with pytest.raises(ValueError, match=r"^fid_kid: feature returned 1 NaN or inf value\(s\) among the features of 3 "
                                         r"image\(s\); FID and KID of such features mean nothing"):
        fid_kid(real, fake, feature=Nan(), **_KID)


def test_fid_kid_checks_the_feature_contract_and_its_advice_works(tmp_path: Path) -> None:
    """A feature module returning (N,), `num_features = 5` on one returning 3 features, or `feature=lambda x: ...`:
    `RuntimeError: output with shape [1] doesn't match the broadcast shape [4]`, `RuntimeError: The size of tensor a
    (5) must match the size of tensor b (3) ...`, `AttributeError: 'function' object has no attribute 'to'`; and
    `seed=2**70`: `ValueError: Overflow when unpacking long long` (probe 37i, D14). Each names `feature` (or `seed`)
    and its contract, and the advice given, followed, scores."""
    from srunit.eval.fid import fid_kid

    real, fake = _images(tmp_path / "real", 3), _images(tmp_path / "fake", 3, seed=1)
    want = fid_kid(real, fake, feature=_Mean(), **_KID)

    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.float().mean((1, 2, 3))

    with pytest.raises(ValueError, match=r"^fid_kid: feature returned features of shape \(1,\) for 1 image\(s\), not "
                                         r"\(1, D\); it must be a torch.nn.Module mapping uint8 \(N, 3, H, W\) images "
                                         r"to \(N, D\) finite features"):
        fid_kid(real, fake, feature=Flat(), **_KID)

    class Five(_Mean):
        num_features = 5

    with pytest.raises(ValueError, match=r"^fid_kid: feature returned features of shape \(3, 3\) for 3 image\(s\), not "
                                         r"\(3, 5\) \(its num_features attribute\); .*; set num_features to 3 or "
                                         r"remove the attribute \(a probe pass then finds D\)$"):
        fid_kid(real, fake, feature=Five(), **_KID)
    Five.num_features = 3  # the advice, followed
    assert fid_kid(real, fake, feature=Five(), **_KID) == want
    del Five.num_features  # ... or the other way
    assert fid_kid(real, fake, feature=Five(), **_KID) == want

    class Words(_Mean):
        num_features = "3"

    with pytest.raises(TypeError, match=r"^fid_kid: feature.num_features must be an int \(the feature count D\), got "
                                        r"str '3'"):
        fid_kid(real, fake, feature=Words(), **_KID)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return x.float().mean((2, 3))

    with pytest.raises(TypeError, match=r"^fid_kid: feature must be a torch.nn.Module .*; got function "
                                        r"test_fid_kid_checks_.*mean \(a function can be wrapped: a torch.nn.Module "
                                        r"subclass whose forward\(x\) returns it\)$") as caught:
        fid_kid(real, fake, feature=mean, **_KID)  # type: ignore[arg-type]
    assert " at 0x" not in str(caught.value)

    class Wrapped(torch.nn.Module):  # the advice, followed
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return mean(x)

    assert fid_kid(real, fake, feature=Wrapped(), **_KID) == want

    with pytest.raises(ConfigError, match=r"^fid_kid: seed must be an integer from .* got 1180591620717411303424; "
                                          r"pass seed an integer from 0 to 2\*\*64 - 1"):
        fid_kid(real, fake, feature=_Mean(), seed=2**70, **_KID)
    assert fid_kid(real, fake, feature=_Mean(), seed=2**64 - 1, **_KID).fid == want.fid


def test_eval_seg_names_the_folder_not_a_writer_object(tmp_path: Path, tiny_runs: dict[str, Path],
                                                       tiny_data: Path, capsys: pytest.CaptureFixture[str],
                                                       cli_status: Callable[[list[str]], int]) -> None:
    """`eval seg --images es/r1/eval --labels ss/testLabels ... --run es/r1 --replace-record`: `... translate into a
    folder outside <srunit._atomic.FolderWriter object at 0x7fa2f1c35650>, or pass es/r1/eval/translated itself`
    (probe 37i, D21). The folder is named, and a writer formatted anywhere shows its folder."""
    from srunit._atomic import FolderWriter

    run = tmp_path / "r1"
    shutil.copytree(tiny_runs["srunit"], run)
    _images(run / "eval" / "translated", 2, size=40)
    seg = tmp_path / "seg.py"
    seg.write_text("def seg(img):\n    return (img[..., 0] // 64).astype('int64')\n")
    assert cli_status(["eval", "seg", "--images", str(run / "eval"), "--labels", str(tiny_data / "testLabels"),
                       "--segmenter", f"{seg}:seg", "--classes", "8", "--run", str(run), "--replace-record",
                       "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"translate into a folder outside {run / 'eval'}, or pass {run / 'eval' / 'translated'} itself" in err, err
    assert "object at 0x" not in err
    with FolderWriter(tmp_path / "w") as writer:
        assert str(writer) == f"{tmp_path / 'w'}" and repr(writer) == f"FolderWriter({str(tmp_path / 'w')!r})"


def test_score_segmentation_writes_a_predicted_folder_given_with_a_tilde_in_the_home_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`score_segmentation(..., predicted="~/pred")` wrote the class maps into a folder named `~` of the working
    folder (`./~/pred`), where the checks of D10 looked at the home folder's `pred`: the folder checked is the one
    written."""
    from srunit.eval.scoring import score_segmentation

    images, labels = _images(tmp_path / "images", 2), _labels(tmp_path / "labels", 2)
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    score_segmentation(images, labels, _segment, 4, predicted="~/pred")
    assert sorted(p.name for p in (tmp_path / "home" / "pred").iterdir()) == ["00.png", "01.png"]
    assert not (tmp_path / "work" / "~").exists()
