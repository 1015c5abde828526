"""Round thirty-four (E): fixes for round thirty-four (A)'s report: `srunit app --host` with a malformed name, and a
benchmark folder moved while it trains."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from srunit.errors import ConfigError


@pytest.mark.parametrize("host", ["not..a..host", "a" * 70, ".leading", "x." + "b" * 64 + ".example"])
def test_a_malformed_host_name_is_one_line_naming_it(host: str) -> None:
    """34A: `srunit app --host not..a..host` (or a part of 70 characters) was five tracebacks from the server's thread
    and "Cannot find empty port" blaming the port. Refused naming --host, the value and what a name is."""
    from srunit.app import check_host

    with pytest.raises(ConfigError, match=rf"^--host {re.escape(host)} is not a valid host name or address \(.*"
                                          r"parts of 1 to 63 characters.*give a name or address of this machine"):
        check_host(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "localhost", "localhost.", "::1", "[::1]", "::",
                                  "fe80::1%lo", "my-host.example.org", "a" * 63 + ".example", "10.1.2.3"])
def test_valid_hosts_pass_the_host_check(host: str) -> None:
    from srunit.app import check_host

    check_host(host)


def test_app_refuses_a_malformed_host_before_any_checkpoint_is_read(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                    cli_status: Callable[[list[str]], int]) -> None:
    """Through `srunit app`: the checkpoint does not exist, so the host check came first (no checkpoint is loaded,
    gradio is not needed)."""
    assert cli_status(["app", "--checkpoint", str(tmp_path / "nothing"), "--host", "not..a..host"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("srunit app: error: --host not..a..host is not a valid host name or address")
    assert "nothing" not in lines[0]


def test_launch_app_refuses_a_malformed_host_before_the_server_starts() -> None:
    """The library's entry point has the same rule: the blocks are never launched."""
    from srunit.app import launch_app

    class _Blocks:
        def launch(self, **given: object) -> None:
            raise AssertionError(f"launched with {given}")

    with pytest.raises(ConfigError, match=r"^--host a\.\.b is not a valid host name or address"):
        launch_app(_Blocks(), None, host="a..b", port=7000)  # type: ignore[arg-type]  # the demo is never reached


@pytest.fixture
def moved_while_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_settings: Callable[..., object],
                         tiny_bench_segmenter: Path) -> tuple[Path, Path, object]:
    """A benchmark folder (relative, as the probe gave it) that is moved away (mv bW bW-moved) as its first run's
    training reads its first image, after the data loader has listed the files: the loader meets a missing image."""
    import srunit.data.unaligned as unaligned

    monkeypatch.chdir(tmp_path)
    out, moved = Path("bW"), tmp_path / "bW-moved"
    read = unaligned.load_rgb

    def move_first(*args: object, **kwargs: object) -> object:
        if not moved.exists():
            os.rename(out, moved)
        return read(*args, **kwargs)

    monkeypatch.setattr(unaligned, "load_rgb", move_first)
    return out, moved, tiny_settings(methods=("cut",), conditions=("unmatched",))


def test_a_benchmark_folder_moved_while_it_trains_names_its_new_place(
        moved_while_training: tuple[Path, Path, object]) -> None:
    """34A: `bench synthscapes --out bW` with bW moved while its first run trained: "image file bW/data/unmatched/
    trainA/0004.png does not exist; ... delete that folder (rm -r bW/data/unmatched) and run the same command again",
    where rm found nothing and the same command started a new benchmark in bW. Now the folder's move, where it is
    now, and how to continue it there."""
    from srunit.errors import DataError
    from srunit.synthscapes.benchmark import run_benchmark

    out, moved, settings = moved_while_training
    with pytest.raises(DataError) as stopped:
        run_benchmark(out, settings, show_progress=False, command="srunit bench synthscapes --out bW")  # type: ignore
    message = str(stopped.value)
    assert message.startswith("bW was moved or replaced while the benchmark wrote into it (the folder there now is "
                              "not the one srunit opened; it is now at")
    assert f"it is now at {moved}" in message
    assert message.endswith(f"move it back (mv {moved} bW) and run the same command again, or run it with --out "
                            f"{moved}, to continue it")
    assert "rm -r" not in message
    assert not out.exists()  # nothing made again at the old place
    assert (moved / "data" / "unmatched" / "trainA").is_dir()


def test_a_benchmark_run_job_stopped_by_its_folder_moved_says_so(moved_while_training: tuple[Path, Path, object]
                                                                 ) -> None:
    """What a --jobs worker does (`RunWork.run` in a process of its own, which knows the folder's identity, not where
    it went): its own line names the move and the way back, not `rm -r` of the generated data."""
    from srunit.errors import DataError
    from srunit.synthscapes import benchmark

    out, moved, settings = moved_while_training
    made: list[benchmark.RunWork] = []

    def capture(self: benchmark.RunWork, segment: object = None) -> dict[str, object]:
        made.append(self)
        raise RuntimeError("captured")  # the benchmark stops here; the run is done below, as a job does it

    real = benchmark.RunWork.run
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(benchmark.RunWork, "run", capture)
        with pytest.raises(RuntimeError, match="captured"):
            benchmark.run_benchmark(out, settings, show_progress=False)  # type: ignore[arg-type]
    with pytest.raises(DataError) as stopped:
        real(made[0], None)
    message = str(stopped.value)
    assert message.startswith("bW was moved or replaced while the benchmark wrote into it (the folder there now is "
                              "not the one srunit opened)")
    assert message.endswith("move it back to bW and run the same command again to continue it")
    assert "rm -r" not in message
