"""Round thirty-seven (eval): the evaluation and data side defects of probe (J) (eval, report, data, tune)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.errors import ConfigError, DataError


def _images(folder: Path, count: int, value: int = 40, size: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), value + i, np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def _labels(folder: Path, count: int, size: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size), i % 2, np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def _through_link(outer_option: str, outer: Path, inner_option: str, inner: Path, link: Path) -> str:
    return (f"{outer_option} {outer} holds {inner_option} {inner} (through the link {link}, which points to "
            f"{os.path.realpath(link)}")


# ----------------------------------------------------------------------------- D1, D2, D3: a link into the other folder

@pytest.mark.parametrize("pred_through_link", [False, True])
def test_eval_paired_refuses_a_target_folder_holding_a_link_to_the_predictions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        pred_through_link: bool) -> None:
    """`eval paired --pred p --target t` with t/predlink -> p: the nesting check compared paths only, the scan of t
    followed the link, and "4 target file(s) have no prediction partner ...: t/predlink/0000.png, ...; remove these"
    advised deleting the translations through the link (probe (J), D1). Now refused, naming the link; nothing is
    advised for deletion and p is untouched."""
    pred = _images(tmp_path / "p", 4)
    target = _images(tmp_path / "t", 4, value=90)
    link = target / "predlink"
    link.symlink_to(pred, target_is_directory=True)
    given = link if pred_through_link else pred
    assert cli_status(["eval", "paired", "--pred", str(given), "--target", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert _through_link("--target", target, "--pred", given, link) in err
    assert "remove these" not in err and len(list(pred.iterdir())) == 4


def test_paired_scores_refuses_a_target_folder_holding_a_link_to_the_predictions(tmp_path: Path) -> None:
    """`paired_scores('p', 't')` with t/predlink -> p: "4 prediction file(s) have no target partner ... remove these"
    (probe (J), D1, the API). Now the DataError of the nesting check, naming the link."""
    from srunit.eval import paired_scores

    pred = _images(tmp_path / "p", 4)
    target = _images(tmp_path / "t", 4, value=90)
    (target / "predlink").symlink_to(pred, target_is_directory=True)
    with pytest.raises(DataError) as caught:
        paired_scores(pred, target)
    assert _through_link("--target", target, "--pred", pred, target / "predlink") in str(caught.value)


class _MeanColour(torch.nn.Module):
    num_features = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean((2, 3))


@pytest.mark.parametrize("link_to_parent", [False, True])
def test_fid_kid_refuses_a_real_folder_holding_a_link_to_the_fakes(tmp_path: Path, link_to_parent: bool) -> None:
    """`fid_kid('fr', 'p')` with fr/fake -> p gave `num_real=8` of 4 real images: the translations were counted as
    real images, scores silently wrong (probe (J), D2). Now refused naming the link; also a link to a folder that
    holds p (the scan reaches p below it)."""
    from srunit.eval import fid_kid

    fake = _images(tmp_path / "work" / "p", 4)
    real = _images(tmp_path / "fr", 4, value=90)
    link = real / "fake"
    link.symlink_to(fake.parent if link_to_parent else fake, target_is_directory=True)
    with pytest.raises(DataError) as caught:
        fid_kid(real, fake, feature=_MeanColour(), kid_subset_size=2, kid_subsets=2)
    assert _through_link("--real", real, "--fake", fake, link) in str(caught.value)


def test_fid_kid_still_scores_a_folder_with_links_elsewhere_and_a_hidden_link_to_the_fakes(tmp_path: Path) -> None:
    """What the scan does not read is not refused: a hidden link to the fakes (hidden folders are passed over) and a
    link to a third folder leave the scores as they were: 4 + 2 real images, 4 fakes."""
    from srunit.eval import fid_kid

    fake = _images(tmp_path / "p", 4)
    real = _images(tmp_path / "fr", 4, value=90)
    (real / ".hidden").symlink_to(fake, target_is_directory=True)
    (real / "more").symlink_to(_images(tmp_path / "other", 2, value=150), target_is_directory=True)
    scores = fid_kid(real, fake, feature=_MeanColour(), kid_subset_size=2, kid_subsets=2)
    assert (scores.num_real, scores.num_fake) == (6, 4)


@pytest.mark.parametrize("api", [False, True])
def test_data_split_refuses_a_domain_folder_holding_a_link_to_the_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int], api: bool) -> None:
    """`data split --images-a dA --images-b dB` with dA/blink -> dB: "8 --images-a file(s) have no --labels partner
    ...: dA/blink/0000.png, ...; remove these": domain B's images, through the link (probe (J), D3). Now refused by
    the shared check naming the link, before anything is written; dB is untouched."""
    a = _images(tmp_path / "dA", 4)
    b = _images(tmp_path / "dB", 4, value=140)
    labels = _labels(tmp_path / "dL", 4)
    (a / "blink").symlink_to(b, target_is_directory=True)
    expected = _through_link("--images-a", a, "--images-b", b, a / "blink")
    if api:
        from srunit.datasets.split import split_folders

        with pytest.raises(ConfigError) as caught:
            split_folders(tmp_path / "o", images_a=a, images_b=b, labels=labels, classes=2)
        assert expected in str(caught.value)
    else:
        assert cli_status(["data", "split", "--images-a", str(a), "--images-b", str(b), "--labels", str(labels),
                           "--classes", "2", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert expected in err and "remove these" not in err
    assert not (tmp_path / "o").exists() and len(list(b.iterdir())) == 4
