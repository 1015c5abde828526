"""srunit.engine.distributed and data-parallel training, on CPU with gloo.

The multi-process tests start real torchrun jobs (``python -m torch.distributed.run``) on localhost,
as a user would; each launch takes a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from srunit.data import EpochSampler
from srunit.engine import Schedule, Trainer
from srunit.engine.distributed import Distributed, from_environment, rank_seed
from srunit.errors import ConfigError
from srunit.networks import PatchDiscriminator, ResnetGenerator

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
# Settings of every job below: tiny networks, 32 px crops, no loader workers, a log line per step.
TINY = ["--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "6", "--model.projector_dim", "8",
        "--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu",
        "--train.log_every", "1", "--train.checkpoint_every", "1", "--no-progress"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    # PYTHONFAULTHANDLER: a process killed by a signal (SIGABRT ...) prints where each of its threads was.
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    assert done.returncode == 0, (
        f"{' '.join(cmd)}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def _train(data: Path, runs: Path, name: str, *args: str, processes: int = 0) -> subprocess.CompletedProcess:
    """`srunit train` as one plain process (processes=0) or a torchrun job of `processes` on this node."""
    launcher = TORCHRUN + ["--standalone", "--nproc-per-node", str(processes)] if processes else [sys.executable]
    return _run(
        [
            *launcher,
            "-m",
            "srunit",
            "train",
            "--data.root",
            str(data),
            "--train.runs_dir",
            str(runs),
            "--train.name",
            name,
            *_tiny_for(args),
            *args,
        ]
    )


def _tiny_for(args: tuple[str, ...]) -> list[str]:
    """TINY without the projector option for a preset without a projector (`srunit train` refuses it there)."""
    if {"cyclegan", "gcgan", "stegogan"} & set(args):
        i = TINY.index("--model.projector_dim")
        return TINY[:i] + TINY[i + 2:]
    return TINY


def _resume(run: Path, steps: int, processes: int = 0) -> subprocess.CompletedProcess:
    """`srunit train --resume RUN --train.steps STEPS` as one plain process or a torchrun job (see `_train`)."""
    launcher = TORCHRUN + ["--standalone", "--nproc-per-node", str(processes)] if processes else [sys.executable]
    return _run([*launcher, "-m", "srunit", "train", "--resume", str(run), "--train.steps", str(steps),
                 "--no-progress"])


# ----------------------------------------------------------------------------- one process


def test_a_single_process_is_a_job_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    job = from_environment()
    assert job == Distributed() and job.is_main and not job.enabled and job.world_size == 1
    grads = [torch.ones(3)]
    job.all_reduce_mean_(grads)  # nothing to talk to: unchanged
    assert torch.equal(grads[0], torch.ones(3))
    assert job.gather_object("x") == ["x"] and job.broadcast_object(5) == 5
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="RANK, LOCAL_RANK not; start the job with torchrun"):
        from_environment()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(ConfigError, match="LOCAL_RANK='x' is not an integer"):
        from_environment()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert from_environment() == Distributed(rank=1, world_size=2, local_rank=1)


@pytest.mark.parametrize(("env", "says"), [
    ({"WORLD_SIZE": "abc", "RANK": "0", "LOCAL_RANK": "0"}, "WORLD_SIZE='abc' is not an integer"),
    ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "RANK=2 is out of range for WORLD_SIZE=2: ranks are 0 to 1"),
    ({"WORLD_SIZE": "2", "RANK": "-1", "LOCAL_RANK": "0"}, "RANK=-1 is out of range"),
    ({"WORLD_SIZE": "0", "RANK": "0", "LOCAL_RANK": "0"}, "WORLD_SIZE=0 must be 1 or more"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "x"},
     "MASTER_PORT='x' must name the host and a port"),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1",
      "SRUNIT_RENDEZVOUS_TIMEOUT": "soon"}, "SRUNIT_RENDEZVOUS_TIMEOUT='soon' must be a number of seconds"),
])
def test_malformed_job_variables_are_refused_by_name(env: dict[str, str], says: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.engine.distributed import setup

    for name in ("TORCHELASTIC_USE_AGENT_STORE", "MASTER_ADDR", "MASTER_PORT", "SRUNIT_RENDEZVOUS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(says)):
        setup(torch.device("cpu"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("rank", [0, 1])
def test_a_job_whose_peers_never_come_fails_with_a_message_within_its_timeout(rank: int,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 0 of two waits for a rank 1 that never starts; rank 1 of two waits for a rank 0 that never starts:
    each fails within SRUNIT_RENDEZVOUS_TIMEOUT (here 1 s; 600 by default) with what to do, not after torch's
    30 minutes."""
    from srunit.engine.distributed import setup

    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    for name, value in {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port()), "SRUNIT_RENDEZVOUS_TIMEOUT": "1"}.items():
        monkeypatch.setenv(name, value)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"the job did not start: rank .* waited for .* for 1 s .*; start all 2 "
                                          r"processes .*SRUNIT_RENDEZVOUS_TIMEOUT=SECONDS"):
        setup(torch.device("cpu"))
    assert time.monotonic() - start < 60
    assert not torch.distributed.is_initialized()


def test_rank_seeds_keep_rank_0_and_differ_elsewhere() -> None:
    assert rank_seed(7, 0) == 7  # a single process draws what it always drew
    seeds = {rank_seed(7, r) for r in range(1, 9)} | {rank_seed(7, 1, step=10), rank_seed(8, 1), rank_seed(7, 0, 3)}
    assert len(seeds) == 11 and 7 not in seeds
    assert rank_seed(7, 3, 5) == rank_seed(7, 3, 5)


def test_shards_are_disjoint_and_a_global_batch_does_not_depend_on_the_job_size() -> None:
    def shards(world: int, batch: int, start: int = 0) -> list[list[int]]:
        return [
            list(EpochSampler(23, seed=3, epoch=1, start=start, batch_size=batch, rank=r, world_size=world))
            for r in range(world)
        ]

    order = list(EpochSampler(23, seed=3, epoch=1))
    assert sorted(order) == list(range(23))
    two = shards(2, 3)  # global batch 6: 3 full global batches, 5 images left over (dropped)
    assert [len(s) for s in two] == [9, 9] and not set(two[0]) & set(two[1])
    for step in range(3):  # step s takes the same 6 images as one process with batch 6
        assert two[0][3 * step : 3 * step + 3] + two[1][3 * step : 3 * step + 3] == order[6 * step : 6 * step + 6]
    assert len(EpochSampler(23, seed=3, epoch=1, batch_size=3, rank=1, world_size=2)) == 9
    resumed = shards(2, 3, start=6)  # after one step of the epoch
    assert resumed[0] == two[0][3:] and resumed[1] == two[1][3:]
    assert [len(s) for s in shards(3, 2)] == [6, 6, 6]
    with pytest.raises(ConfigError, match="rank 2 is not below the world size 2"):
        EpochSampler(23, seed=3, epoch=1, rank=2, world_size=2)


def test_schedule_counts_global_batches(tiny_config) -> None:
    cfg = tiny_config("cut", "train.epochs=1", "train.epochs_decay=1", "train.batch_size=2")
    assert Schedule.from_config(cfg.train, 20, world_size=2).steps_per_epoch == 5
    assert Schedule.from_config(cfg.train, 20, world_size=2).total_steps == 10
    with pytest.raises(ConfigError, match=r"train.batch_size 2 x 4 processes = 8 is larger than the dataset \(7"):
        Schedule.from_config(cfg.train, 7, world_size=4)


# ----------------------------------------------------------------------------- torchrun jobs


def json_field(path: Path, key: str) -> object:
    return json.loads(path.read_text())[key]


def _state_dicts(
    run_dir: Path, latest_weights: Callable[[Path], dict[str, torch.Tensor]]
) -> dict[str, dict[str, torch.Tensor]]:
    weights = latest_weights(run_dir)
    return {net: {k.split(".", 1)[1]: v for k, v in weights.items() if k.startswith(net + ".")} for net in "GDF"}


@pytest.mark.parametrize(
    "preset",
    [
        pytest.param(("cut",), id="cut"),
        # E6: D's double backward, its gradients averaged like any other.
        pytest.param(("e6-lipschitz", "--method.lipschitz.start", "0"), id="e6-lipschitz"),
        # E1: statistics from the same first 10 images of epoch 0 in both jobs (unsharded on every process).
        pytest.param(
            ("e1-distancegan", "--method.distance.start", "0", "--method.distance.stats_images", "10"),
            id="e1-distancegan",
        ),
    ],
)
def test_two_processes_of_batch_1_train_as_one_of_batch_2(
    tiny_data: Path, tmp_path: Path, latest_weights, preset: tuple[str, ...]
) -> None:
    """(a) CUT and the ablations with a term of their own in D (E6) or data statistics (E1), 3 steps on
    the same images. With every position sampled (num_patches >= H*W) the step has no randomness left,
    so the two jobs differ only in the order of floating-point sums.

    Tolerance: every weight matrix and every parameter of F agrees to 1e-6 (measured about 2e-8). The
    biases of convolutions that feed an InstanceNorm get a mathematically zero gradient, which Adam
    turns into steps of +-lr whose sign is rounding noise, so they are compared through what they
    cannot change: the outputs of G and D on fixed images agree to 1e-5.
    """
    args = ("--preset", *preset, "--method.num_patches", "4096", "--train.steps", "3")
    _train(tiny_data, tmp_path, "two", *args, "--train.batch_size", "1", processes=2)
    _train(tiny_data, tmp_path, "one", *args, "--train.batch_size", "2")
    two, one = _state_dicts(tmp_path / "two", latest_weights), _state_dicts(tmp_path / "one", latest_weights)
    assert json_field(tmp_path / "two" / "run.json", "global_batch_size") == 2
    for net in "GDF":
        for key, value in one[net].items():
            if key.endswith("weight") or net == "F":
                assert torch.allclose(value, two[net][key], rtol=0, atol=1e-6), f"{net}.{key}"
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    g1, g2 = ResnetGenerator(ngf=4, n_blocks=6), ResnetGenerator(ngf=4, n_blocks=6)
    d1, d2 = PatchDiscriminator(ndf=4), PatchDiscriminator(ndf=4)
    for net, (a, b) in {"G": (g1, g2), "D": (d1, d2)}.items():
        a.load_state_dict(one[net])
        b.load_state_dict(two[net])
        with torch.no_grad():
            assert torch.allclose(a(x), b(x), rtol=0, atol=1e-5), net
    assert not torch.equal(one["G"]["layers.1.weight"], ResnetGenerator(ngf=4, n_blocks=6).layers[1].weight)


def test_srunit_checkpoints_and_resumes_under_torchrun(tiny_data: Path, tmp_path: Path, latest_weights) -> None:
    """(b) SRUNIT with 2 processes: 2 steps + resume + 2 steps equals 4 steps bit for bit (a constant
    learning rate, so the extension does not change the schedule); resuming with 1 process works."""
    args = (
        "--preset",
        "srunit",
        "--method.robust.start",
        "0",
        "--train.decay_fraction",
        "0",
        "--method.num_patches",
        "16",
    )
    _train(tiny_data, tmp_path, "straight", *args, "--train.steps", "4", processes=2)
    _train(tiny_data, tmp_path, "split", *args, "--train.steps", "2", processes=2)
    state = torch.load(tmp_path / "split" / "checkpoints" / "latest" / "state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_per_rank"]) == 2
    assert not torch.equal(state["rng_per_rank"][0]["torch"], state["rng_per_rank"][1]["torch"])
    _resume(tmp_path / "split", 4, processes=2)
    a, b = latest_weights(tmp_path / "straight"), latest_weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed job diverged"
    metrics = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in metrics] == [1, 2, 3, 4]  # rank 0 alone writes the logs
    # Another job size: the run continues (weights, optimizer states, step), not bit-identically.
    done = _resume(tmp_path / "split", 5)
    assert "written by 2 process(es), this job has 1" in done.stderr
    assert (tmp_path / "split" / "checkpoints" / "latest").resolve().name == "step_00000005"


def test_each_process_keeps_and_resumes_its_own_image_pools(tiny_data: Path, tmp_path: Path, latest_weights) -> None:
    """CycleGAN with pools of 2 and 2 processes of batch 1: each process's pools fill in steps 1-2 and
    swap from step 3 on; the checkpoint holds both processes' pools, and 2 + 2 steps equal 4."""
    args = ("--preset", "cyclegan", "--method.pool_size", "2", "--train.decay_fraction", "0", "--train.batch_size", "1")
    _train(tiny_data, tmp_path, "straight", *args, "--train.steps", "4", processes=2)
    _train(tiny_data, tmp_path, "split", *args, "--train.steps", "2", processes=2)
    state = torch.load(tmp_path / "split" / "checkpoints" / "latest" / "state.pt", weights_only=True)
    per_rank = [s["pools"]["B"] for s in state["method_per_rank"]]
    assert [p["count"] for p in per_rank] == [2, 2] and not torch.equal(per_rank[0]["images"], per_rank[1]["images"])
    assert torch.equal(state["method"]["pools"]["B"]["images"], per_rank[0]["images"])
    _resume(tmp_path / "split", 4, processes=2)
    a, b = latest_weights(tmp_path / "straight"), latest_weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed job diverged"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_meet_at_a_c10d_rendezvous(tiny_data: Path, tmp_path: Path) -> None:
    """(c) Two torchrun launches of one process each, --nnodes 2, meet at a c10d rendezvous on localhost
    (the rendezvous gives them node ranks 0 and 1) and train a few steps as one job."""
    port = _free_port()
    cmd = [
        *TORCHRUN,
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "srunit-test",
        "-m",
        "srunit",
        "train",
        "--preset",
        "cut",
        "--data.root",
        str(tiny_data),
        "--train.runs_dir",
        str(tmp_path),
        "--train.name",
        "nodes",
        "--train.steps",
        "2",
        *TINY,
    ]
    nodes = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()) for _ in range(2)
    ]
    outputs = [node.communicate(timeout=180) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert sum("run folder:" in out for out, _ in outputs) == 1  # printed by global rank 0 only
    assert json_field(tmp_path / "nodes" / "run.json", "world_size") == 2
    assert (tmp_path / "nodes" / "checkpoints" / "latest").resolve().name == "step_00000002"


def test_speed_benchmark_counts_every_process(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    _run(
        [
            *TORCHRUN,
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "srunit",
            "bench",
            "speed",
            "--preset",
            "cut",
            "--size",
            "32",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--model.ngf",
            "4",
            "--model.ndf",
            "4",
            "--json",
            str(out),
        ]
    )
    result = {k: json_field(out, k) for k in ("world_size", "global_batch_size", "images_per_s", "steps_per_s")}
    assert result["world_size"] == 2 and result["global_batch_size"] == 2
    assert result["images_per_s"] == pytest.approx(2 * result["steps_per_s"])


def test_a_trainer_outside_torchrun_is_one_process(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    trainer = Trainer(
        tiny_config("cut", "train.steps=1", "train.name=t", data_root=tiny_data, runs_dir=tmp_path), show_progress=False
    )
    assert trainer.dist == Distributed() and trainer.global_batch_size == 1
    trainer.fit()
    assert json_field(tmp_path / "t" / "run.json", "world_size") == 1
    state = torch.load(tmp_path / "t" / "checkpoints" / "latest" / "state.pt", weights_only=True)
    assert state["world_size"] == 1 and state["rng_per_rank"] is None


def test_a_job_process_keeps_its_exit_status_and_output(tmp_path: Path) -> None:
    """A process of a job (WORLD_SIZE > 1) leaves without finalization: its status and its last words stay."""
    env = {
        **{k: v for k, v in _env().items() if k != "PYTHONUNBUFFERED"},
        "WORLD_SIZE": "2",
        "RANK": "1",
        "LOCAL_RANK": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "srunit", "export", str(tmp_path / "missing"), "--output", str(tmp_path / "g.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2 and f"checkpoint path {tmp_path / 'missing'} does not exist" in done.stderr
    # stdout into a pipe is block-buffered: it is flushed before the process leaves.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "srunit",
            "data",
            "synthscapes",
            "--out",
            str(tmp_path / "ss"),
            "--size",
            "16",
            "--num-pool",
            "8",
            "--num-test",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0 and done.stdout.rstrip().endswith("(manifest.json lists every pool index)")


def _children(pid: int) -> dict[int, int]:
    """{rank: pid} of the worker processes torchrun ``pid`` started (read from /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = dict(kv.split("=", 1) for kv in (entry / "environ").read_bytes().decode().split("\0") if "=" in kv)
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and "RANK" in env:
            out[int(env["RANK"])] = int(entry.name)
    return out


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    caught = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(caught >> (signum - 1) & 1)


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the workers through /proc")
def test_a_stop_signal_to_one_process_stops_the_whole_job_at_one_step(tiny_data: Path, tmp_path: Path) -> None:
    """SIGUSR1 reaches rank 1 only: both processes stop after the same step, rank 0 writes that step's
    checkpoint, each says so, and the job resumes from it."""
    cmd = [
        *TORCHRUN,
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "srunit",
        "train",
        "--preset",
        "cut",
        "--data.root",
        str(tiny_data),
        "--train.runs_dir",
        str(tmp_path),
        "--train.name",
        "sig",
        "--train.steps",
        "400",
        *TINY,
        "--train.checkpoint_every",
        "1000",
    ]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    seen: list[str] = []
    try:
        for line in job.stdout:
            seen.append(line)
            if "srunit.train: step 2/400" in line:
                break
        workers = _children(job.pid)
        assert sorted(workers) == [0, 1], "".join(seen)
        # The condition, not a moment: rank 1 catches SIGUSR1 (its trainer's handler is in place) when it is sent.
        assert _wait_for(lambda: _catches(workers[1], signal.SIGUSR1), 60), "".join(seen)
        os.kill(workers[1], signal.SIGUSR1)
        # The rest of the output through the same reader: communicate() with a timeout reads the pipe's file
        # descriptor and loses what the line reader above had buffered already.
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.append(job.stdout.read()), daemon=True)
        reader.start()
        job.wait(timeout=300)
        reader.join(timeout=60)
        seen.extend(rest)
    finally:
        job.kill()
    out = "".join(seen)
    # Matched in the whole output, not line by line: the processes share one pipe.
    stops = {rank: int(step) for rank, step in re.findall(r"\(rank (\d+)\): stopped by SIGUSR1 after step (\d+);", out)}
    assert set(stops) == {"0", "1"} and stops["0"] == stops["1"] >= 2, out
    assert "exitcode  : 138" in out or "exitcode: 138" in out.replace(" ", ""), out
    step = stops["0"]
    assert (tmp_path / "sig" / "checkpoints" / "latest").resolve().name == f"step_{step:08d}"
    _resume(tmp_path / "sig", step + 1, processes=2)
    assert (tmp_path / "sig" / "checkpoints" / "latest").resolve().name == f"step_{step + 1:08d}"


def test_a_job_process_lets_wandb_write_its_run_before_it_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """The skipped finalization includes W&B's exit hook; the job-exit path runs its teardown itself."""
    import types

    from srunit.cli import main as cli_main

    calls: list[str] = []
    fake = types.ModuleType("wandb")
    fake.teardown = lambda: calls.append("teardown")
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr(cli_main, "main", lambda: 3)

    def leave(code: int) -> None:
        calls.append(f"_exit {code}")
        raise KeyboardInterrupt  # the real os._exit does not return

    monkeypatch.setattr(cli_main.os, "_exit", leave)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(KeyboardInterrupt):
        cli_main.entry()
    assert calls == ["teardown", "_exit 3"]
    monkeypatch.setenv("WORLD_SIZE", "1")
    calls.clear()
    with pytest.raises(SystemExit) as done:
        cli_main.entry()
    assert done.value.code == 3 and calls == []  # a single process exits normally; the hook runs then
