"""srunit.runtime.provenance: what produced a result (versions, commit, machine)."""

from __future__ import annotations

import platform
import re

import torch

import srunit
from srunit.runtime.provenance import device_name, git_commit, machine_description, software_versions


def test_cpu_device_name_and_machine_description() -> None:
    cpu = torch.device("cpu")
    name = device_name(cpu)
    assert isinstance(name, str) and name.strip()
    line = machine_description(cpu)
    assert line.startswith(name)
    assert f"{torch.get_num_threads()} threads" in line and f"torch {torch.__version__} CPU" in line


def test_software_versions_and_commit() -> None:
    versions = software_versions()
    assert versions == {"srunit_version": srunit.__version__, "git_commit": git_commit(), "torch": torch.__version__,
                        "python": platform.python_version()}
    commit = git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    assert git_commit() is commit  # read once per process
