"""The web demo's logic (srunit.app) without a server: labels, examples, refusals, the optional extra."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from srunit.app import (
    GRADIO_INSTALL,
    DemoModel,
    TranslationDemo,
    describe_checkpoint,
    example_folder,
    example_images,
    import_gradio,
    page_seed,
)
from srunit.cli.main import main
from srunit.data import load_rgb
from srunit.errors import CheckpointError, ConfigError, DataError
from srunit.inference import Translator


def test_each_checkpoint_is_labelled_by_run_method_and_step(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    run = tiny_runs["srunit"]
    step = run / "checkpoints" / "step_00000001"
    for path in (run, run / "checkpoints" / "latest", step, step / "G.safetensors"):
        info = describe_checkpoint(path)
        assert (info.label, info.data["root"]) == ("srunit · srunit · step 1", yaml.safe_load(
            (run / "config.yaml").read_text())["data"]["root"]), path
    assert describe_checkpoint(tiny_runs["cut"]).label == "cut · cut · step 1"
    lone = tmp_path / "mine.safetensors"
    shutil.copy(step / "G.safetensors", lone)
    assert describe_checkpoint(lone).label == "mine.safetensors · method unknown (no run config.yaml)"
    (tmp_path / "latest_net_G.pth").write_bytes(b"")  # named after its file, read only when translating
    assert describe_checkpoint(tmp_path / "latest_net_G.pth").label == "latest_net_G.pth · public CUT/SRUNIT weights"
    with pytest.raises(CheckpointError, match="does not exist"):
        describe_checkpoint(tmp_path / "nope")
    # the same checkpoint twice: the second output is told apart
    demo = TranslationDemo.from_checkpoints([run, step], device="cpu")
    assert demo.labels == ["srunit · srunit · step 1", "srunit · srunit · step 1 (2)"]


def test_examples_come_from_the_runs_domain_a(tiny_data: Path, tmp_path: Path, write_image) -> None:
    assert example_folder({"root": str(tiny_data), "dir_a": None}) == tiny_data / "testA"  # held out first
    own = tmp_path / "own"
    write_image(own / "trainA" / "a.png")
    assert example_folder({"root": str(own)}) == own / "trainA"
    assert example_folder({"root": str(own), "dir_a": str(tiny_data / "trainB")}) == tiny_data / "trainB"
    assert example_folder({"root": str(tmp_path / "moved")}) is None
    assert example_folder(None) is None
    # sorted, at most `count`, passing over unreadable and too-large files
    folder = tmp_path / "ex"
    write_image(folder / "a.png", size=(10, 10))
    (folder / "b.png").write_bytes(b"not an image")
    write_image(folder / "c.png", size=(20, 20))
    write_image(folder / "d.png", size=(10, 10))
    write_image(folder / "e.png", size=(10, 10))
    assert example_images(folder, 3, max_pixels=100) == [folder / "a.png", folder / "d.png", folder / "e.png"]
    assert example_images(folder, 1, max_pixels=400) == [folder / "a.png"]
    assert example_images(tmp_path / "empty", 3, max_pixels=100) == []


class _Counting(Translator):
    """A real translator that counts the images it was given."""

    calls = 0

    def translate_images(self, images, batch_size=8):  # type: ignore[override]
        type(self).calls += len(images)
        return super().translate_images(images, batch_size)


def test_uploads_are_refused_with_their_name_size_and_the_limit(tiny_runs: dict[str, Path], tmp_path: Path,
                                                                write_image) -> None:
    base = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    model = DemoModel(describe_checkpoint(tiny_runs["cut"]), _Counting(base.generator, base.device))
    demo = TranslationDemo([model], max_pixels=400)
    upload = write_image(tmp_path / "0123abcd" / "holiday photo.png", size=(21, 20))
    with pytest.raises(DataError) as err:
        demo.translate_file(upload)
    assert str(err.value) == ("image file holiday photo.png is 20 x 21 = 420 pixels, more than this app's limit of "
                              "400; upload a smaller image (whoever runs the app sets the limit with srunit app "
                              "--max-pixels)")  # the name as uploaded, not the server's folder 0123abcd
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(DataError, match=r"^cannot read image file notes.png: not an image file PIL can identify; "
                                        r"upload a PNG, JPEG"):
        demo.translate_file(tmp_path / "notes.png")
    assert _Counting.calls == 0
    fits = write_image(tmp_path / "ok.png", size=(20, 20))
    (out,) = demo.translate_file(fits)
    assert _Counting.calls == 1 and out.size == (20, 20)
    assert np.array_equal(np.asarray(out), np.asarray(base.translate_images([load_rgb(fits)])[0]))
    with pytest.raises(ConfigError, match="--max-pixels must be an integer from 1 to .*, got 0"):
        TranslationDemo([model], max_pixels=0)
    with pytest.raises(ConfigError, match="--max-pixels"):  # the API bounds it as the command does
        TranslationDemo([model], max_pixels=2**62)
    with pytest.raises(ConfigError, match="at least one --checkpoint"):
        TranslationDemo([])


def test_a_drit_checkpoint_gets_the_pages_attribute_seed(tiny_config, tiny_data: Path, tiny_runs: dict[str, Path],
                                                         tmp_path: Path, write_image) -> None:
    from srunit.engine import Trainer

    config = tiny_config("drit", "method.dis_layers=3", "method.content_dis_layers=0", "train.steps=1",
                         "train.name=d", data_root=tiny_data, runs_dir=tmp_path)
    run = Trainer(config, show_progress=False).fit()
    drit = TranslationDemo.from_checkpoints([run], device="cpu")
    cut = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    assert drit.multimodal and not cut.multimodal and drit.labels == ["d · drit · step 1"]
    upload = write_image(tmp_path / "up.png", size=(20, 24))
    image = load_rgb(upload)
    translator = Translator.from_checkpoint(run, device="cpu")
    by_seed = {seed: np.asarray(drit.translate_file(upload, seed)[0]) for seed in (0, 3)}
    for seed, got in by_seed.items():
        assert np.array_equal(got, np.asarray(translator.translate_images([image], attribute=seed)[0]))
    assert not np.array_equal(by_seed[0], by_seed[3])  # another seed, another style
    cut.translate_file(upload, 3)  # a unimodal checkpoint is not given the seed (it would refuse it)
    with pytest.raises(ConfigError, match="attribute seed must be an integer >= 0, got -1"):
        drit.translate_file(upload, -1)
    with pytest.raises(ConfigError, match=r"attribute seed must be an integer from 0 to 2\*\*64 - 1"):
        drit.translate_file(upload, 2**64)


@pytest.mark.parametrize(("value", "seed"), [(None, 0), ("", 0), (3, 3), (3.0, 3), (float(2**63), 2**63)])
def test_the_pages_seed_field_gives_a_seed(value: object, seed: int) -> None:
    assert page_seed(value) == seed


@pytest.mark.parametrize(("value", "message"), [
    (float("inf"), "attribute seed must be a whole number from 0 to 2**64 - 1, got inf"),
    (float("nan"), "got nan"), (1.5, "got 1.5"), ("7", "got '7'"),
    (2.0**70, "attribute seed must be an integer from 0 to 2**64 - 1"), (-1.0, "got -1"),
])
def test_a_seed_field_that_is_no_seed_is_a_config_error(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        page_seed(value)


def test_without_gradio_the_command_says_how_to_install_it(tiny_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    with pytest.raises(ConfigError, match=r"needs gradio, the optional extra 'app'"):
        import_gradio()
    assert main(["app", "--checkpoint", str(tiny_runs["cut"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srunit app: error: ") and GRADIO_INSTALL in err
    # the package and `srunit --help` never import gradio
    code = "import sys, srunit, srunit.app, srunit.cli.main as m; m.build_parser(); print('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
