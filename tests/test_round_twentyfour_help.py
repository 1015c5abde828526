"""Round twenty-four (A): every command's help and the CLI reference read as a contract. Each test reproduced a
defect first."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

from srunit.cli.main import build_parser
from srunit.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    return build_parser(argv).parse_known_args(argv)


def test_a_prefix_of_an_option_is_not_taken_as_that_option(tmp_path: Path, capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    """`bench synthscapes --seed 7` (the option of `tune` and `data`) was argparse's abbreviation of `--seeds`:
    seven runs from seed 0 instead of one run of seed 7, without a word. `translate --out` was `--output`,
    `train --no` was `--no-progress`."""
    args, extra = _parse(["bench", "synthscapes", "--seed", "7"])
    assert args.seeds == 5 and extra == ["--seed", "7"]
    args, extra = _parse(["translate", "--checkpoint", "c", "--input", "i", "--output", "o", "--over"])
    assert not args.overwrite and extra == ["--over"]
    args, extra = _parse(["train", "--no"])
    assert not args.no_progress and extra == ["--no"]
    out = tmp_path / "bench"
    assert cli_status(["bench", "synthscapes", "--seed", "7", "--out", str(out)]) == 2
    assert "'--seed'" in capsys.readouterr().err
    assert not out.exists()


def test_no_parser_of_the_command_line_takes_abbreviations() -> None:
    """Every command and action, present and future: a new action's parser is made by its parent's class."""
    takes = [" ".join(path) or "srunit" for path, parser in _parsers(build_parser()) if parser.allow_abbrev]
    assert not takes, f"parsers that take a prefix of an option for the option: {takes}"


def _literal_keys(options: object, prefix: str) -> dict[str, tuple[str, ...]]:
    """{"train.precision": ("fp32", "bf16", "fp16"), ...} for every Literal field of the options dataclass."""
    found: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(type(options))
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if dataclasses.is_dataclass(value):
            found.update(_literal_keys(value, f"{prefix}{field.name}."))
        elif typing.get_origin(hints[field.name]) is typing.Literal:
            found[f"{prefix}{field.name}"] = tuple(str(a) for a in typing.get_args(hints[field.name]))
    for name, term in (getattr(options, "terms", None) or {}).items():
        found.update(_literal_keys(term, f"{prefix}{name}."))
    return found


@pytest.mark.parametrize("preset", ["srunit", "e6-lipschitz", "cyclegan", "drit", "gcgan", "stegogan"])
def test_train_help_names_the_values_of_every_option_that_takes_a_few(preset: str,
                                                                       capsys: pytest.CaptureFixture,
                                                                       cli_status: Callable[[list[str]], int]) -> None:
    """`train.precision` read "autocast dtype for the forward passes", `method.robust.estimator` "control_variate:
    Eq. 3's expectation" and `method.lipschitz.real` "x (App. G) or y", which it refuses (`allowed: source,
    target`): the help gave no way to know the values that `--section.key VALUE` takes."""
    assert cli_status(["train", "--help", "--preset", preset]) == 0
    lines = {m.group(1): m.group(2) for m in re.finditer(r"^  --(\S+)\s+(.*)$", capsys.readouterr().out, re.M)}
    config = load_config(preset)
    keys = {**_literal_keys(config.model, "model."), **_literal_keys(config.data, "data."),
            **_literal_keys(config.train, "train."), **_literal_keys(config.method, "method.")}
    unread = {f"model.{key}" for key in config.method.void_model_options()}  # not listed (round twenty-six)
    missing = {key: [v for v in values if not re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", lines[key])]
               for key, values in keys.items() if key not in unread}
    assert not {k: v for k, v in missing.items() if v}, f"train --help --preset {preset} leaves out values"
    assert "train.precision" in keys and "model.init_type" in keys


def test_train_help_of_a_resume_shows_the_run_and_refuses_what_the_resume_refuses(
        tiny_runs: dict[str, Path], capsys: pytest.CaptureFixture, cli_status: Callable[[list[str]], int]) -> None:
    """`train --resume RUN --help --model.ngf 16` listed ngf 16 under "the values of --preset RUN/config.yaml
    (override any of them ...)": --preset is refused with --resume, and so is every override but train.*."""
    run = tiny_runs["cut"]
    assert cli_status(["train", "--resume", str(run), "--help", "--train.steps", "9"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("config keys"))
    assert header.startswith(f"config keys and the values of the run {run} (on --resume, override only the train.*")
    assert "--preset" not in header and "any of them" not in header
    assert re.search(r"^  --train\.steps\s+9\s", out, re.M)
    assert cli_status(["train", "--resume", str(run), "--help", "--model.ngf", "16"]) == 2
    assert "--resume accepts only train.* overrides and data.num_workers (got model.ngf)" in capsys.readouterr().err


def test_the_summaries_and_descriptions_name_every_action(capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    """`srunit --help` and `srunit bench --help` named `speed` and `synthscapes` and not `loader`; `srunit data
    --help` named the pix2pix cut, Cityscapes and the split, not `mismatch` or `synthscapes`."""
    assert cli_status(["--help"]) == 0
    top = " ".join(capsys.readouterr().out.split())
    assert re.search(r"bench benchmarks: [^.]*\(loader\)", top)
    for command, words in (("bench", ("`speed`", "`loader`", "`synthscapes`")),
                           ("data", ("pix2pix", "Cityscapes", "split images", "StegoGAN's mismatch", "SynthScapes"))):
        assert cli_status([command, "--help"]) == 0
        description = " ".join(capsys.readouterr().out.split("positional arguments")[0].split())
        assert all(w in description for w in words), (command, description)


def test_stated_defaults_are_single_and_stated(capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    """`tune synthscapes --data-seed` read "(default 0) (profile default)"; `bench speed --preset` and `bench loader
    --preset` (srunit when left out) stated no default."""
    assert cli_status(["tune", "synthscapes", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "seed of the data (default 0, in every profile)" in text and "(default 0) (profile default)" not in text
    for kind in ("speed", "loader"):
        parser = dict(_parsers(build_parser()))[("bench", kind)]
        action = next(a for a in parser._actions if "--preset" in a.option_strings)
        assert action.default == "srunit" and action.help.endswith("(default srunit)")


def test_the_cli_reference_names_drit_among_the_methods_with_keys_of_their_own() -> None:
    """docs/reference/cli.md said "`cyclegan`, `gcgan` and `stegogan` have their own keys", leaving out DRIT's 17."""
    reference = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    line = next(line for line in reference.splitlines() if "have their own keys" in line)
    assert all(f"`{m}`" in line.split("have their own keys")[0][-80:] for m in ("cyclegan", "drit", "gcgan",
                                                                                "stegogan"))


def test_an_export_of_a_b_to_a_generator_file_says_b_to_a(tiny_runs: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture,
                                                           cli_status: Callable[[list[str]], int]) -> None:
    """`export latest_net_G_B.pth` (or a G_BA.safetensors) with the default --direction AtoB, "the file as it is",
    wrote `direction: AtoB` into the file; `translate --checkpoint FILE --direction BtoA` then refused the B -> A
    generator as an A -> B one. The file's name says which it holds."""
    from srunit.export import export_generator
    from srunit.inference import load_generator

    g_ba = tmp_path / "G_BA.safetensors"
    g_ba.write_bytes((tiny_runs["cut"] / "checkpoints" / "latest" / "G.safetensors").read_bytes())
    export_generator(g_ba, tmp_path / "g_ba.ts", check_sizes=((1, 32, 32),))
    assert load_generator(tmp_path / "g_ba.ts").metadata["direction"] == "BtoA"
    images = tmp_path / "in"
    images.mkdir()
    _png(images / "a.png")
    assert cli_status(["translate", "--checkpoint", str(tmp_path / "g_ba.ts"), "--input", str(images), "--output",
                    str(tmp_path / "out"), "--direction", "BtoA"]) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").is_file()


def _png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (20, 12), (200, 30, 90)).save(path)


@pytest.mark.parametrize("option", [["--classes", "8"], ["--palette", "cityscapes"], ["--ignore-index", "3"]])
def test_data_split_in_maps_mode_refuses_the_options_of_labels_mode(synth_data: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture,
                                                                    option: list[str],
                                                                    cli_status: Callable[[list[str]], int]) -> None:
    """`data split --mode maps --classes 8` (or `--palette`, `--ignore-index`: "number of classes in labels mode",
    "label id not counted in histograms") wrote the split of grey histograms that none of them changes, without a
    word, while labels mode refuses maps mode's `--other-fraction`."""
    out = tmp_path / "split"
    assert cli_status(["data", "split", "--mode", "maps", "--images-a", str(synth_data / "testA"), "--images-b",
                    str(synth_data / "testB"), *option, "--out", str(out)]) == 2
    assert f"{' '.join(option)} applies to --mode labels only" in capsys.readouterr().err
    assert not out.exists()
    assert cli_status(["data", "split", "--mode", "maps", "--images-a", str(synth_data / "testA"), "--images-b",
                    str(synth_data / "testB"), "--out", str(out)]) == 0
    assert len(list((out / "trainA").iterdir())) + len(list((out / "trainB").iterdir())) >= 3


def test_bench_speed_refuses_train_steps_which_its_steps_option_sets(capsys: pytest.CaptureFixture,
        cli_status: Callable[[list[str]], int]) -> None:
    """`bench speed --train.steps 50` timed the 5 steps of --steps and said nothing ("Config overrides apply as in
    train", where train.steps is the length of the run)."""
    assert cli_status(["bench", "speed", "--preset", "cut", "--size", "32", "--train.steps", "50"]) == 2
    assert "--train.steps: bench speed sets train.steps of each run itself (--steps)" in capsys.readouterr().err


def test_the_cli_reference_names_the_options_of_srunit_itself() -> None:
    """Errors advise `srunit --verbose train` and `srunit -v` for a traceback; docs/reference/cli.md named neither
    (nor `--version`), though it lists every option of every command."""
    reference = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    top = {o for action in build_parser()._actions for o in action.option_strings} - {"-h", "--help"}
    assert top == {"-v", "--verbose", "--version"}
    assert all(f"`srunit {o}" in reference or f"(`{o}`)" in reference for o in top), top
