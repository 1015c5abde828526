"""Round thirty-four (lead): round thirty-three (A)'s defect left open, a `tune synthscapes` study renamed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from srunit.errors import ConfigError


def _synthscapes_settings(out: Path, study: str):
    from srunit.synthscapes import profile_settings
    from srunit.tune.study import TuneSettings
    from srunit.tune.targets import SynthScapesTarget

    bench = profile_settings("cpu", methods=("srunit",), conditions=("unmatched",), seeds=1, size=32, steps=2)
    target = SynthScapesTarget(bench.to_dict(), str(out))
    return TuneSettings(preset="srunit", target=target.to_dict(), study_name=study, trials=2, sampler="random",
                        space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})


def test_a_renamed_synthscapes_tuning_folder_continues_with_the_study_name_its_refusal_advises(tmp_path) -> None:
    """`mv tuA tuB`, then `tune synthscapes ... --out tuB`: refused with `add --study tuA`, which was refused again
    as "target differ": tune.json recorded the tuning folder's own path as the target's data folder."""
    from srunit.tune.study import _prepare_out

    _prepare_out(tmp_path / "tuA", _synthscapes_settings(tmp_path / "tuA", "tuA"))
    (tmp_path / "tuA").rename(tmp_path / "tuB")
    with pytest.raises(ConfigError, match=r"\(study_name differ; .*: add --study tuA$"):
        _prepare_out(tmp_path / "tuB", _synthscapes_settings(tmp_path / "tuB", "tuB"))
    _prepare_out(tmp_path / "tuB", _synthscapes_settings(tmp_path / "tuB", "tuA"))  # the advice taken: it continues


def test_a_tuning_folder_an_earlier_version_wrote_with_its_path_continues(tmp_path) -> None:
    """tune.json of earlier versions holds the target's `out`: the same command continues it, and so does the
    same study in the folder renamed."""
    from srunit.tune.study import SETTINGS_FILE, _prepare_out

    for name in ("tuA", "tuB"):
        out = tmp_path / name
        out.mkdir()
        stored = _synthscapes_settings(out, "tuA").to_dict()
        stored["target"]["out"] = str(tmp_path / "tuA")  # as earlier versions wrote it
        (out / SETTINGS_FILE).write_text(json.dumps(stored))
        _prepare_out(out, _synthscapes_settings(out, "tuA"))


def test_a_study_run_whose_folder_moved_with_its_data_resumes_on_the_data_where_they_are_now(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """A study's folder holds its data and its runs: `mv tuC tuD` between a trial's checkpoint and its end, then
    the study continued. The run's data.root still named tuC/data/unmatched, and the resume was refused ("put the
    images back ... or a link") for data that had moved with the run."""
    from srunit.engine import Trainer
    from srunit.engine.trainer import train_to_end

    old, new = tmp_path / "tuC", tmp_path / "tuD"
    shutil.copytree(tiny_data, old / "data")

    def config(home: Path, *more: str):
        return tiny_config("srunit", "train.steps=1", "train.name=r", *more, data_root=home / "data",
                           runs_dir=home / "trials")

    Trainer(config(old), show_progress=False).fit()
    old.rename(new)
    assert train_to_end(config(new), show_progress=False) == new / "trials" / "r"  # finished: nothing to train

    trainer = Trainer.resume(new / "trials" / "r", ["train.steps=2"], show_progress=False,
                             data_root=str(new / "data"))
    trainer.fit()
    assert trainer.step == 2
    last = json.loads((new / "trials" / "r" / "history.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "resume" and last["changed"]["data.root"] == [str(old / "data"), str(new / "data")]
    assert f"root: {new / 'data'}" in (new / "trials" / "r" / "config.yaml").read_text()
    # and the user's own resume, which takes no data_root, refuses data moved away as before
    (new / "data").rename(tmp_path / "elsewhere")
    with pytest.raises(Exception, match="does not exist"):
        Trainer.resume(new / "trials" / "r", ["train.steps=3"], show_progress=False)


def test_tune_data_help_lists_only_the_objectives_tune_data_scores(capsys) -> None:
    """`tune data --help` said --objective takes dist, acc_30 and acc_50 "on SynthScapes": `tune data` refuses
    them (its images have no paired truth); `tune synthscapes --help` lists them."""
    from srunit.cli.main import main
    from srunit.tune.targets import FOLDER_SCORES, SYNTHSCAPES_SCORES

    for kind, scores in (("data", FOLDER_SCORES), ("synthscapes", SYNTHSCAPES_SCORES)):
        with pytest.raises(SystemExit):
            main(["tune", kind, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        about = text.split("--objective OBJECTIVE ")[1].split(" --space")[0]
        named = {s for s in SYNTHSCAPES_SCORES if s in about.replace(",", " ").replace(";", " ").split()}
        assert named == set(scores), (kind, about)


def test_a_runs_dir_under_home_written_with_a_tilde_puts_the_run_there(
        tiny_config, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`runs_dir: ~/runs` in a config (or `--train.runs_dir '~/runs'`) made a folder named `~` in the working folder,
    while `data.root: ~/data` is read below $HOME (round thirty-four (C), noted)."""
    from srunit.engine import Trainer
    from srunit.engine.trainer import train_to_end

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    config = tiny_config("cut", "train.steps=1", "train.name=r", "train.runs_dir=~/runs", data_root=tiny_data)
    assert config.train.runs_dir == "~/runs"  # the config keeps what the user wrote
    run = Trainer(config, show_progress=False).fit()
    assert run == home / "runs" / "r" and (run / "config.yaml").is_file()
    assert list(work.iterdir()) == []
    assert train_to_end(config, show_progress=False) == run  # a study's run is found there again


def _file_settings(root: Path, preset: Path):
    from srunit.tune.study import TuneSettings, preset_values
    from srunit.tune.targets import FolderTarget

    target = FolderTarget(str(root / "train"), str(root / "val"), str(root / "labels"), "seg.onnx", 3)
    return TuneSettings(preset=str(preset), target=target.to_dict(), study_name="s", trials=2, sampler="random",
                        space={"method.nce_t": {"low": 0.05, "high": 0.1}},
                        preset_config=preset_values(str(preset)))


def test_a_study_whose_preset_file_was_edited_since_it_began_is_refused_naming_the_edit(tmp_path) -> None:
    """Ctrl-C after trial 0, `method: {lambda_nce: 3.0}` appended to the study's preset file, the same command: taken,
    and the next trials trained with lambda_nce 3.0 beside trial 0's 1.0, in one study, without a word (round
    thirty-four (A)); tune.json named the preset by its path alone."""
    from srunit.tune.study import SETTINGS_FILE, _prepare_out

    for folder in ("train", "val", "labels"):
        (tmp_path / folder).mkdir()
    preset = tmp_path / "p2.yaml"
    preset.write_text("base: cut\n")
    out = tmp_path / "tu"
    _prepare_out(out, _file_settings(tmp_path, preset))
    preset.write_text("base: cut\nmethod: {lambda_nce: 3.0}\n")
    with pytest.raises(ConfigError, match=r"the preset .*p2\.yaml was edited since the study began "
                                          r"\(method\.lambda_nce 3\.0 now, 1\.0 when the study began\): undo"):
        _prepare_out(out, _file_settings(tmp_path, preset))
    preset.write_text("base: cut\n")  # the edit undone, as advised: the study continues
    _prepare_out(out, _file_settings(tmp_path, preset))
    # a tune.json of an earlier version, which kept no preset values, continues as before
    stored = json.loads((out / SETTINGS_FILE).read_text())
    del stored["preset_config"]
    (out / SETTINGS_FILE).write_text(json.dumps(stored))
    _prepare_out(out, _file_settings(tmp_path, preset))


def test_a_preset_files_own_options_that_the_profile_would_replace_are_refused_with_advice_that_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_status) -> None:
    """`bench synthscapes --methods tiny.yaml --profile cpu` (and `tune synthscapes --preset tiny.yaml`), tiny.yaml
    setting `model: {ngf: 4, ndf: 4}`: every run trained the cpu profile's ngf 32 and ndf 32, without a word (round
    thirty-four (A)). The advice, followed, trains the file's values; a packaged preset is as before."""
    from srunit.synthscapes import profile_settings
    from srunit.synthscapes.settings import check_files_keep_their_values

    monkeypatch.chdir(tmp_path)
    Path("tiny.yaml").write_text("base: srunit\nmodel: {ngf: 4, ndf: 4, n_blocks: 2}\n")
    small = ["--size", "32", "--steps", "2", "--num-pool", "24", "--num-test", "2", "--segmenter-steps", "2",
             "--segmenter-images", "8", "--no-progress"]
    for command in (["bench", "synthscapes", "--methods", "tiny.yaml", "--baseline", "tiny", "--seeds", "1",
                     "--conditions", "unmatched", "--no-report"],
                    ["tune", "synthscapes", "--preset", "tiny.yaml", "--trials", "1"]):
        assert cli_status([*command, "--profile", "cpu", *small, "--out", "o"]) == 2
        err = capsys.readouterr().err
        assert "tiny.yaml sets model.ngf 4, model.ndf 4, model.n_blocks 2, and the cpu profile sets model.ngf 32, " \
               "model.ndf 32, model.n_blocks 6 for every run: give --model.ngf 4 --model.ndf 4 --model.n_blocks 2 " \
               "to train the file's values" in err, err
        assert not Path("o").exists()
    # the advice, as the command line gives it: taken
    settings = profile_settings("cpu", methods=("tiny.yaml",), overrides=(
        *profile_settings("cpu").overrides, "model.ngf=4", "model.ndf=4", "model.n_blocks=2"))
    check_files_keep_their_values(settings.methods, settings.overrides, ("model.ngf=4", "model.ndf=4",
                                                                         "model.n_blocks=2"), "cpu")
    packaged = profile_settings("cpu", methods=("srunit",))
    check_files_keep_their_values(packaged.methods, packaged.overrides, (), "cpu")


def test_a_benchmarks_run_trained_before_its_preset_was_edited_is_refused_naming_the_edit(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """`bench synthscapes --methods pq.yaml ...`, then `method: {lambda_nce: 3.0}` added to pq.yaml, the same command:
    the run trained with 1.0 was taken as it was (scored before, or resumed with its own config) and the table showed
    it as pq.yaml's, without a word. Where a run lies, or on which device, is no other option."""
    from srunit.engine import Trainer
    from srunit.synthscapes.benchmark import _check_run_of_the_same_options

    def config(*more: str, runs: Path = tmp_path / "bench" / "unmatched"):
        return tiny_config("cut", "train.steps=1", "train.name=pq-seed0", *more, data_root=tiny_data, runs_dir=runs)

    run = Trainer(config(), show_progress=False).fit()
    before = sorted(p.name for p in run.rglob("*"))
    with pytest.raises(ConfigError, match=r"pq-seed0 was trained with other options than pq\.yaml gives now "
                                          r"\(method\.lambda_nce 1\.0 in the run, 3\.0 now\): the preset was edited"):
        _check_run_of_the_same_options(run, config("method.lambda_nce=3.0"), "pq.yaml")
    assert sorted(p.name for p in run.rglob("*")) == before
    _check_run_of_the_same_options(run, config("train.device=cpu", "data.num_workers=0"), "pq.yaml")
    moved = tmp_path / "moved"
    (tmp_path / "bench").rename(moved)
    _check_run_of_the_same_options(moved / "unmatched" / "pq-seed0", config(runs=moved / "unmatched"), "pq.yaml")
    _check_run_of_the_same_options(tmp_path / "none", config(), "pq.yaml")  # no run yet: nothing to compare
