"""A data-loader worker that fails mid-epoch (a file deleted or damaged while training runs) ends `srunit train`
with the file's error and status 2: no hang waiting for the workers, no worker traceback in the message."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The training command in a child process (a hang fails the test by its timeout): the files of trainA are deleted
# or overwritten after the data set is scanned, so the first batch a worker loads fails.
_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from srunit.cli.main import main
    from srunit.engine import trainer

    data, runs, how = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    fit = trainer.Trainer.fit

    def damaged_fit(self, *args, **kwargs):
        if how == "diverge":  # the training process fails while its workers are loading the next batches
            self.method.G.layers[1].weight.data.fill_(float("nan"))
        for path in sorted((data / "trainA").glob("*.png")) if how != "diverge" else []:
            path.unlink() if how == "delete" else path.write_bytes(b"not an image")
        return fit(self, *args, **kwargs)

    trainer.Trainer.fit = damaged_fit
    sys.exit(main(["train", "--preset", "cut", "--data.root", str(data), "--train.runs_dir", runs, "--no-progress",
                   "--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "6", "--model.projector_dim", "8",
                   "--method.num_patches", "16", "--data.load_size", "36", "--data.crop_size", "32",
                   "--data.num_workers", "2", "--train.device", "cpu", "--train.steps", "2"]))
""")


@pytest.mark.parametrize("how, says", [("delete", "does not exist"), ("damage", "cannot read image file")])
def test_a_file_that_vanishes_mid_epoch_ends_training_with_its_name(tiny_data: Path, tmp_path: Path, how: str,
                                                                     says: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(data), str(tmp_path / "runs"), how],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "srunit train: error: " in done.stderr and says in done.stderr
    assert str(data / "trainA") in done.stderr
    assert "Traceback" not in done.stderr and "DataLoader worker" not in done.stderr


def test_a_failing_training_step_with_loader_workers_running_ends_the_process(tiny_data: Path, tmp_path: Path
                                                                               ) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tiny_data), str(tmp_path / "runs"), "diverge"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "srunit train: error: non-finite loss at step 1" in done.stderr
