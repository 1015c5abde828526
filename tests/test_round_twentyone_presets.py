"""Round twenty-one (A): every preset end to end, and each method's own options at their edges."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from srunit.engine.checkpoint import save_checkpoint
from srunit.engine.dryrun import dry_run
from srunit.errors import ConfigError
from srunit.inference import Translator
from srunit.losses.smoothness import smoothness_loss
from srunit.methods import build_method

DOCS = Path(__file__).resolve().parents[1] / "docs"
PRESETS = Path(__file__).resolve().parents[1] / "src" / "srunit" / "presets"


def test_a_smoothness_patch_as_large_as_a_square_training_image_is_refused(tiny_config, tiny_data: Path) -> None:
    # Independently of the term's sampler: a 32x32 patch of a 32x32 image has one position, so both patches of
    # every pair are the image itself, their histograms are equal, and the term is 0 whatever G does.
    g = torch.Generator().manual_seed(0)
    x, fake = (torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
    corners = torch.zeros(1, 4, 2, dtype=torch.int64)
    assert smoothness_loss(x, fake, corners, 32, 16).item() == 0.0
    # The training images of tiny_config are 32x32 crops.
    config = tiny_config("e2-harmonicgan", "method.smooth.start=0", "method.smooth.patch_size=32",
                         data_root=tiny_data)
    with pytest.raises(ConfigError, match=re.escape(
            "method.smooth.patch_size 32 is the whole 32x32 training image: every patch is the image itself, so "
            "each pair of patches is equal and the term is 0 without a gradient; use method.smooth.patch_size 31 "
            "or less")):
        dry_run(config)
    # The advice of the larger size leads past the void value too, and the value it names acts.
    too_big = tiny_config("e2-harmonicgan", "method.smooth.start=0", "method.smooth.patch_size=33",
                          data_root=tiny_data)
    with pytest.raises(ConfigError, match=re.escape("use method.smooth.patch_size 31 or less")):
        dry_run(too_big)
    ok = dry_run(tiny_config("e2-harmonicgan", "method.smooth.start=0", "method.smooth.patch_size=31",
                             data_root=tiny_data))
    assert ok.losses["smooth"] > 0


def test_a_bad_attribute_seed_on_the_command_line_advises_options_the_command_has(tiny_config,
                                                                                 tmp_path: Path) -> None:
    config = tiny_config("drit")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    folder = save_checkpoint(tmp_path / "run" / "checkpoints", 1, method.networks(), {"step": 1}, keep=True)
    tr = Translator.from_checkpoint(folder, device="cpu")
    with pytest.raises(ConfigError) as err:
        tr.attribute_code(-1, "--attribute-seed")
    # translate and app have no way to pass "a code tensor" and take an image as --reference, not --attribute-seed
    assert str(err.value).endswith("pass a seed >= 0 as --attribute-seed, or a domain-B image as --reference")
    with pytest.raises(ConfigError) as err:
        tr.attribute_code(-1, "attribute")
    assert str(err.value).endswith("pass a seed >= 0 as attribute, a domain-B image or a code tensor")


def test_the_methods_page_lists_every_preset() -> None:
    page = (DOCS / "methods.md").read_text()
    table = page.split("## Presets", 1)[1].split("\n## ", 1)[0]
    for preset in sorted(p.stem for p in PRESETS.glob("*.yaml")):
        assert f"`{preset}`" in table, preset


def test_a_dry_run_refuses_a_batch_larger_than_the_dataset_as_train_does(tiny_config, tiny_data: Path) -> None:
    images = len(list((tiny_data / "trainA").glob("*.png")))
    # `train --preset gcgan` (batch 8) on a folder of 5 images was refused at once, while its --dry-run passed
    # on a short batch of 5.
    config = tiny_config("gcgan", f"train.batch_size={images + 1}", data_root=tiny_data)
    with pytest.raises(ConfigError, match=re.escape(f"train.batch_size {images + 1} is larger than the dataset "
                                                    f"({images} images); lower train.batch_size to {images} or less")):
        dry_run(config)
    assert dry_run(tiny_config("gcgan", f"train.batch_size={images}", "method.pool_size=0",
                               data_root=tiny_data)).num_a == images


def test_a_drit_checkpoint_asked_for_b_to_a_says_drit_translates_a_to_b_only(tiny_config, tmp_path: Path) -> None:
    from srunit.errors import CheckpointError
    from srunit.inference import load_generator

    config = tiny_config("drit")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    folder = save_checkpoint(tmp_path / "run" / "checkpoints", 1, method.networks(), {"step": 1}, keep=True)
    # DRIT trains a B -> A decoder, so "only two-sided methods such as cyclegan train one" was wrong for it.
    with pytest.raises(CheckpointError, match=re.escape(
            "is a DRIT checkpoint: srunit translates DRIT runs from A to B only (its B -> A decoder trains but is "
            "not offered for translation); leave out --direction BtoA")):
        load_generator(folder, direction="BtoA")
    assert load_generator(folder, direction="AtoB") is not None
