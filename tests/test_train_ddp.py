"""Two CPU processes with gloo (torchrun) follow the loss curve of one process at the same
global batch: each rank reads its half of every batch and gradients are averaged."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]


def losses(out_dir: Path, kind: str, key: str) -> list[float]:
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if r["kind"] == kind]


def _one_process(tiny_corpus: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The reference: one process, 20 steps of 32 sequences (4 micro-steps of 8)."""
    config = tmp_path / "tiny.yaml"
    options = {"max_steps": 20, "micro_batch": 8, "eval.every": 10, "threads": 1}
    config.write_text(json.dumps(tiny_config(tiny_corpus, tmp_path / "one", **options)))
    subprocess.run(
        [sys.executable, "-m", "train", str(config)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    return config


def _same_curves(run: Path, reference: Path) -> None:
    assert len(losses(run, "train", "loss")) == 20
    assert losses(run, "train", "loss") == pytest.approx(losses(reference, "train", "loss"), rel=1e-4)
    assert losses(run, "eval", "val_loss") == pytest.approx(losses(reference, "eval", "val_loss"), rel=1e-4)


def test_two_gloo_processes_match_one_process(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    config = _one_process(tiny_corpus, tmp_path)
    # 2 processes x 2 micro-steps of 8: the same 32 sequences a step
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*torchrun, "-m", "train", str(config), f"out_dir={tmp_path / 'two'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es) x 2 micro-steps of 8" in done.stdout
    _same_curves(tmp_path / "two", tmp_path / "one")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_meet_at_a_rendezvous_endpoint_and_match_one_process(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Multi-node torchrun as on a cluster (`--nnodes 2`, a c10d rendezvous endpoint), both
    "nodes" on this machine: ranks come from the rendezvous, not from LOCAL_RANK, and the run
    follows the one-process curve."""
    config = _one_process(tiny_corpus, tmp_path)
    endpoint = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc_per_node=1",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint={endpoint}",
                "--rdzv_id=grist-test",
                "-m",
                "train",
                str(config),
                f"out_dir={tmp_path / 'nodes'}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert sum("2 process(es) x 2 micro-steps of 8" in out for out, _ in outputs) == 1  # rank 0 reports
    _same_curves(tmp_path / "nodes", tmp_path / "one")
