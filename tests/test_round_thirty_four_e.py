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
