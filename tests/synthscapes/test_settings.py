"""srunit.synthscapes.settings: benchmark settings, their checks and the named profiles."""

from __future__ import annotations

import json
import re

import pytest

from srunit.config import preset_names
from srunit.errors import ConfigError
from srunit.synthscapes import DEFAULT_CONDITIONS, PROFILES, BenchSettings, profile_settings


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown method preset 'cutt'"):
        BenchSettings(methods=("cutt",))
    with pytest.raises(ConfigError, match="--conditions"):
        BenchSettings(conditions=("similar",))
    with pytest.raises(ConfigError, match="--size"):
        BenchSettings(size=30)
    with pytest.raises(ConfigError, match="--profile"):
        profile_settings("tpu")
    s = profile_settings("cpu", seeds=1, size=32)
    assert s.segmenter.size == 32 and BenchSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@pytest.mark.parametrize(("changes", "message"), [
    ({"seeds": 0}, "--seeds must be an integer from 1 to 1,000, got 0"),
    ({"first_seed": -1}, "--first-seed must be an integer from 0 to 18,446,744,073,709,551,615, got -1"),
    ({"steps": 0}, "--steps must be an integer from 1 to 1,000,000,000,000, got 0"),
    ({"batch_size": 0}, "--batch-size must be an integer from 1 to 65,536, got 0"),
    ({"num_pool": 4}, "--num-pool must be an integer from 8 to 100,000, got 4"),
    ({"num_test": 0}, "--num-test must be an integer from 1 to 100,000, got 0"),
    ({"size": 12}, "--size must be an integer from 16 to 4,096, got 12"),
    ({"matched_mix": 101.0}, "--matched-mix must be between 0 and 100, got 101.0; pass a value in that range"),
    ({"methods": ()}, "--methods is empty"),
    ({"conditions": ()}, "--conditions is empty"),
])
def test_settings_errors_name_the_option(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        BenchSettings(**changes)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_gives_valid_settings(profile: str) -> None:
    s = profile_settings(profile)
    assert set(s.methods) <= set(preset_names()) and s.conditions == DEFAULT_CONDITIONS
    assert s.segmenter.size == s.size  # the segmenter works at the benchmark's image size
    shrunk = profile_settings(profile, size=32, steps=None, segmenter_steps=3, segmenter_images=4)
    assert (shrunk.size, shrunk.steps, shrunk.segmenter.size) == (32, s.steps, 32)
    assert (shrunk.segmenter.steps, shrunk.segmenter.num_images) == (3, 4)


def test_all_methods_means_every_preset_and_seeds_default_to_five() -> None:
    s = profile_settings("cpu", methods=("all",))
    assert s.methods == tuple(preset_names()) and s.seeds == 5
    assert profile_settings("cpu", methods=("srunit", "all")).methods[0] == "srunit"  # kept once, in place
    assert len(set(profile_settings("cpu", methods=("srunit", "all")).methods)) == len(preset_names())


def test_method_overrides_apply_only_where_the_method_has_the_option() -> None:
    from srunit.synthscapes.settings import overrides_for

    overrides = ("model.ngf=32", "method.num_patches=64", "method.robust.weight=0.5", "train.lr=1e-3")
    assert overrides_for("srunit", overrides) == overrides
    # CUT takes an Eq. 3 section too, but a benchmark-wide override does not switch the term on in it.
    assert overrides_for("cut", overrides) == ("model.ngf=32", "method.num_patches=64", "train.lr=1e-3")
    with pytest.raises(ConfigError, match=re.escape("override --method.robust.weight: none of the methods cut")):
        BenchSettings(methods=("cut",), overrides=("method.robust.weight=0.5",))
    BenchSettings(methods=("cut", "srunit"), overrides=("method.robust.weight=0.5",))  # srunit has it


def test_a_profiles_method_options_are_kept_only_for_methods_that_have_them() -> None:
    assert not any("content_dis_layers" in o for o in profile_settings("cpu").overrides)  # cut, srunit
    assert "method.content_dis_layers=1" in profile_settings("cpu", methods=("cut", "drit")).overrides
    assert profile_settings("gpu", methods=("all",)).overrides == ("method.content_dis_layers=2",)
    with pytest.raises(ConfigError, match="none of the methods cut, srunit has this option"):
        profile_settings("cpu", overrides=("method.dis_layers=3",))


def test_first_seed_shifts_the_seeds_and_is_stored() -> None:
    s = profile_settings("cpu", seeds=3, first_seed=100)
    assert list(s.seed_list) == [100, 101, 102] and list(profile_settings("cpu", seeds=2).seed_list) == [0, 1]
    assert BenchSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    old = profile_settings("cpu").to_dict()
    del old["first_seed"]  # settings.json of a benchmark made before the option: seeds from 0
    assert BenchSettings.from_dict(old).first_seed == 0
