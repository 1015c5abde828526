"""Search spaces (srunit.search) and the spaces the methods declare."""

from __future__ import annotations

import pytest

from srunit.config import load_config
from srunit.errors import ConfigError
from srunit.search import LeaveOneOut, Param, space_from_dict
from srunit.tune.study import space_to_dict


def test_the_yaml_form_round_trips() -> None:
    data = {"method.lambda_nce": {"low": 0.5, "high": 10, "log": True},
            "method.num_patches": {"low": 64, "high": 256, "int": True},
            "train.lr": {"choices": [1e-4, 2e-4]},
            "method.robust.layers": {"leave_one_out": [0, 1, 2]}}
    space = space_from_dict(data, "test")
    assert space_from_dict(space_to_dict(space), "again") == space
    leave = space[3]
    assert isinstance(leave, LeaveOneOut) and leave.choices == ("none", "0", "1", "2")
    assert leave.overrides("1") == {"method.robust.layers": [0, 2]}
    assert leave.overrides("none") == {"method.robust.layers": [0, 1, 2]}


@pytest.mark.parametrize(("data", "message"), [
    ({"lambda_nce": {"low": 1, "high": 2}}, "dotted config key"),
    ({"method.x": {"low": 2, "high": 1}}, "below high"),
    ({"method.x": {"low": 0, "high": 1, "log": True}}, "low > 0"),
    ({"method.x": {"low": 0.5, "high": 3, "int": True}}, "integer bounds"),
    ({"method.x": {"choices": []}}, "non-empty list"),
    ({"method.x": {"lo": 1}}, "unknown keys"),
    ({"method.x": {"leave_one_out": 1}}, "2 or more"),
    ([], "mapping of config keys"),
    # A quoted word is true to bool(): `log: "false"` drew log-uniformly.
    ({"method.x": {"low": 1, "high": 2, "log": "false"}}, "entry 'method.x': log must be true or false, got 'false'"),
    ({"method.x": {"low": 1, "high": 2, "int": "no"}}, "int must be true or false"),
    # A repeated choice was drawn twice as often; 1 and 1.0 are one value of a float option.
    ({"train.lr": {"choices": [1e-4, 2e-4, 1e-4]}}, "choices repeat 0.0001; "),
    ({"method.x": {"choices": [1, 1.0]}}, "choices repeat 1.0"),
    ({"method.x": {"choices": [[0, 1], [1]]}}, r"a choice must be a number, a string, true/false or null, got"
     r" \[0, 1\]"),
    ({"method.name": {"choices": ["cut", "srunit"]}}, "a study tunes one method"),
])
def test_bad_spaces_name_the_entry(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        space_from_dict(data, "space.yaml")


def test_true_and_one_are_two_choices() -> None:
    (param,) = space_from_dict({"method.x": {"choices": [True, 1, "1", None]}}, "space.yaml")
    assert param.choices == (True, 1, "1", None)


def test_contains_tells_a_value_of_the_space() -> None:
    p = Param("method.x", 0.1, 1.0)
    assert p.contains(0.5) and not p.contains(2.0) and not p.contains("a")
    assert Param("method.y", choices=("a", "b")).contains("a")


def test_the_methods_declare_the_papers_spaces() -> None:
    srunit = {p.key: p for p in load_config("srunit").method.search_space()}
    assert (srunit["method.robust.weight"].low, srunit["method.robust.weight"].high) == (1e-5, 1e-3)
    assert srunit["method.robust.weight"].log
    assert (srunit["method.robust.max_noise"].low, srunit["method.robust.max_noise"].high) == (0.01, 0.2)
    assert srunit["method.robust.layers"].choices == ("none", "0", "1", "2", "3", "4")
    assert "method.robust.start" in srunit
    cut = {p.key for p in load_config("cut").method.search_space()}
    assert cut == {"method.lambda_nce", "method.nce_temperature"}
    official = {p.key: p for p in load_config("srunit-official").method.search_space()}
    assert official["method.robust.weight"].low < 1e-3 < official["method.robust.weight"].high
    assert load_config("cyclegan").method.search_space() == ()
