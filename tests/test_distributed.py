"""Data parallelism: two gloo processes under torchrun, on one node or as two nodes, make the updates
of one process accumulating two batches, resume from their checkpoint, and leave only rank 0's files;
rank 0 working alone does not trip the collectives' timeout, and losing a node stops the other with
one line, its last checkpoint whole."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml

from seqattn.config import load_config
from seqattn.errors import SeqattnError
from seqattn.training import Trainer, load_checkpoint
from seqattn.training import trainer as trainer_module

from test_training import assert_near, quiet, tiny_config

REPO = Path(__file__).resolve().parent.parent
needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="needs torch.distributed with the gloo backend")
# no dropout or clipping, so that Adam's moments keep the scale of the gradients; 7 batches an epoch
EXACT = ("model.dropout=0.0", "train.clip_norm=0", "train.batch_tokens=2800", "train.max_steps=6",
         "train.valid_every=3", "train.valid_max_sentences=4", "train.log_every=1", "train.threads=1",
         "train.device=cpu")


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def write_recipe(path: Path, corpus: Path, out: Path, *overrides: str) -> Path:
    """The tiny recipe on the CPU (gloo) with `overrides` as a YAML file at `path`."""
    path.write_text(yaml.safe_dump(tiny_config(corpus, out, "train.device=cpu", *overrides).to_dict()))
    return path


TORCHRUN = (sys.executable, "-m", "torch.distributed.run")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun_train(recipe: Path, *args: str) -> str:
    """`cli.py train` in two CPU processes started by torchrun -> their stderr."""
    command = [*TORCHRUN, "--standalone", "--nproc_per_node", "2", str(REPO / "cli.py"), "train", str(recipe), *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(recipe: Path, folder: Path) -> list[subprocess.Popen]:
    """`cli.py train` as two torchrun nodes of one CPU process each, started as on two machines
    (static rendezvous: --node_rank, --master_addr, --master_port) on this one; node I runs in
    FOLDER/nodeI and writes its stderr to FOLDER/nodeI.log -> the two torchrun processes."""
    port, nodes = free_port(), []
    for rank in (0, 1):
        (folder / f"node{rank}").mkdir()
        command = [*TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                   "--master_addr", "127.0.0.1", "--master_port", str(port),
                   str(REPO / "cli.py"), "train", str(recipe)]
        with (folder / f"node{rank}.log").open("w") as log:
            nodes.append(subprocess.Popen(command, cwd=folder / f"node{rank}", stdout=subprocess.DEVNULL, stderr=log,
                                          env=ENV, start_new_session=True))
    return nodes


def node_processes(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):  # gone meanwhile
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def assert_same_updates(ddp: Path, one: Trainer) -> None:
    """The run in `ddp`, 6 updates of 2 batches by 2 processes with a validation every 3, made the
    updates of `one` (one process, accumulate=2) and wrote the same files."""
    ddp_records, ref = records(ddp), records(one.out)
    assert [r["step"] for r in ddp_records] == [r["step"] for r in ref] == [1, 2, 3, 3, 4, 5, 6, 6]
    for got, want in zip(ddp_records, ref):
        assert got.keys() == want.keys() and got["epoch"] == want["epoch"]
        for key in ("train_loss", "valid_loss", "lr"):
            if key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-5), (got["step"], key)
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in one.out.iterdir())
    best = torch.load(ddp / "best.pt", weights_only=True)
    last = torch.load(ddp / "last.pt", weights_only=True)
    assert best["model"].keys() == last["model"].keys() == one.model.state_dict().keys()  # no DDP "module." prefix
    assert [last["progress"][k] for k in ("step", "epoch", "batch_in_epoch")] == [6, 1, 4]
    for name, value in one.model.state_dict().items():
        torch.testing.assert_close(last["model"][name], value, rtol=1e-5, atol=1e-5)
    for key, want in one.optimizer.state_dict()["state"].items():  # Adam's moments sum the gradients
        assert_near(last["optimizer"]["state"][key]["exp_avg"], want["exp_avg"], 1e-4)
        assert_near(last["optimizer"]["state"][key]["exp_avg_sq"], want["exp_avg_sq"], 1e-4)


@needs_gloo
def test_two_processes_equal_one_accumulating_two_batches(small_corpus: Path, tmp_path: Path) -> None:
    """7 batches an epoch: update 4 has one batch, so rank 1 makes a spare pass. The two-process run
    stops at step 3 (mid-epoch) and resumes to step 6 (past the epoch boundary)."""
    one = Trainer(tiny_config(small_corpus, tmp_path / "one", *EXACT, "train.accumulate=2"), log=quiet)
    one.train()
    recipe = write_recipe(tmp_path / "ddp.yaml", small_corpus, tmp_path / "ddp", *EXACT)
    log = torchrun_train(recipe, "train.max_steps=3")
    assert "data parallel: 2 processes (gloo), 2 batches per update" in log
    assert log.count(" parameters on cpu") == 1  # rank 1 logs nothing
    torchrun_train(recipe, "--resume")
    assert_same_updates(tmp_path / "ddp", one)


@needs_gloo
def test_two_nodes_equal_one_process_accumulating_two_batches(small_corpus: Path, tmp_path: Path) -> None:
    """Two torchrun launches of one process each (--nnodes 2), each in a folder of its own, the out_dir
    shared as on a shared filesystem: the updates of one process with accumulate=2, and every file
    is node 0's (both folders stay empty; node 1 logs nothing)."""
    one = Trainer(tiny_config(small_corpus, tmp_path / "one", *EXACT, "train.accumulate=2"), log=quiet)
    one.train()
    recipe = write_recipe(tmp_path / "ddp.yaml", small_corpus, tmp_path / "ddp", *EXACT)
    nodes = start_nodes(recipe, tmp_path)
    try:
        codes = [node.wait(timeout=120) for node in nodes]
    finally:
        for node in nodes:
            signal_all(node_processes(node.pid), signal.SIGKILL)
    logs = [(tmp_path / f"node{rank}.log").read_text() for rank in (0, 1)]
    assert codes == [0, 0], logs
    assert "data parallel: 2 processes (gloo), 2 batches per update" in logs[0]
    assert "parameters on cpu" not in logs[1]
    assert_same_updates(tmp_path / "ddp", one)
    assert not any((tmp_path / "node0").iterdir()) and not any((tmp_path / "node1").iterdir())


def slowly(work, folder: Path):
    """`work` that takes 5 seconds more on rank 0, which does it alone, and adds a line to
    FOLDER/<its name> before."""
    def slow(*args, **kwargs):
        if dist.get_rank() == 0:
            with (folder / work.__name__).open("a") as calls:
                calls.write("called\n")
            time.sleep(5)
        return work(*args, **kwargs)
    return slow


def train_rank(rank: int, port: int, recipe: Path, folder: Path) -> None:
    """Process `rank` of 2 (as torchrun would start it), in which rank 0 builds the task and validates
    3 seconds longer than train.collective_timeout=2; a SeqattnError goes to FOLDER/error."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    trainer_module.build_task = slowly(trainer_module.build_task, folder)
    Trainer.validate = slowly(Trainer.validate, folder)
    try:
        Trainer(load_config(recipe, []), log=quiet).train()
    except SeqattnError as err:
        (folder / "error").write_text(str(err))
        sys.exit(2)


@needs_gloo
def test_rank_0_working_alone_trips_no_timeout_and_notices_a_stopped_process(small_corpus: Path,
                                                                             tmp_path: Path) -> None:
    """The other ranks wait for rank 0's subword models and validations for up to an hour: those
    outlast train.collective_timeout=2 and training goes on. Rank 0 waits for them afterwards for
    train.collective_timeout only: when rank 1 stops answering (SIGSTOP) during the second
    validation, rank 0 stops with one error (not an hour later)."""
    out = tmp_path / "run"
    recipe = write_recipe(tmp_path / "ddp.yaml", small_corpus, out, "train.threads=1", "train.max_steps=100000",
                          "train.valid_every=2", "train.valid_max_sentences=4", "train.collective_timeout=2")
    context, port = torch.multiprocessing.get_context("spawn"), free_port()
    ranks = [context.Process(target=train_rank, args=(rank, port, recipe, tmp_path)) for rank in (0, 1)]
    for process in ranks:
        process.start()
    try:
        deadline = time.monotonic() + 120
        while not ((tmp_path / "validate").exists() and len((tmp_path / "validate").read_text().split()) == 2):
            assert time.monotonic() < deadline and ranks[0].is_alive()
            time.sleep(0.1)
        os.kill(ranks[1].pid, signal.SIGSTOP)
        ranks[0].join(timeout=60)
    finally:
        for process in ranks:
            process.kill()
            process.join()
    assert ranks[0].exitcode == 2
    error = (tmp_path / "error").read_text()
    assert error.startswith("rank 0 lost contact with the other processes after step 4 (Rank 1 failed to pass "), error
    assert "(train.collective_timeout=2s); start every node again with --resume" in error
    assert [r["step"] for r in records(out)] == [2, 2, 4] and "valid_bleu" in records(out)[1]


@needs_gloo
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds a node's processes in /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_losing_a_node_stops_the_other_with_one_line(signum: signal.Signals, small_corpus: Path,
                                                    tmp_path: Path) -> None:
    """Node 1's torchrun and worker are killed (SIGKILL: their connections close) or stop answering
    (SIGSTOP: as a machine that hangs or leaves the network, the next collective times out after
    train.collective_timeout=10) once node 0 has written a checkpoint. Node 0 exits within a minute,
    non-zero, with one line and no traceback of its own; its last.pt resumes."""
    out = tmp_path / "ddp"
    recipe = write_recipe(tmp_path / "ddp.yaml", small_corpus, out, "train.threads=1", "train.max_steps=100000",
                          "train.valid_every=5", "train.valid_max_sentences=4", "train.collective_timeout=10")
    nodes = start_nodes(recipe, tmp_path)
    node1 = []
    try:
        deadline = time.monotonic() + 120
        while not ((out / "train.jsonl").exists() and "valid_loss" in (out / "train.jsonl").read_text()):
            assert time.monotonic() < deadline and nodes[0].poll() is None, (tmp_path / "node0.log").read_text()
            time.sleep(0.2)
        node1 = node_processes(nodes[1].pid)
        assert len(node1) == 2  # torchrun and its worker
        signal_all(node1, signum)
        try:
            code = nodes[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"node 0 still runs a minute after node 1 got {signum.name}")
    finally:
        signal_all(node1, signal.SIGKILL)
        for node in nodes:
            signal_all(node_processes(node.pid), signal.SIGKILL)
    log = (tmp_path / "node0.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert code != 0 and len(errors) == 1, log
    assert errors[0].startswith("error: rank 0 lost contact with the other processes after step ")
    assert errors[0].endswith(f"(train.collective_timeout=10s); start every node again with --resume "
                              f"to continue from {out / 'last.pt'}")
    assert "[rank0]: Traceback" not in log
    saved = load_checkpoint(out / "last.pt")["progress"]["step"]
    assert saved == [r["step"] for r in records(out) if "valid_loss" in r][-1]
    resumed = Trainer(tiny_config(small_corpus, out, "train.threads=1", f"train.max_steps={saved + 1}",
                                  "train.accumulate=2"), resume=True, log=quiet)
    assert resumed.train().step == saved + 1
