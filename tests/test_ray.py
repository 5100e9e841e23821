"""The Ray executor on a real Ray cluster started on this machine (a head and two worker nodes):
the same recipe gives the local executor's corpus, byte for byte, even when a worker node dies
mid-run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import yaml
from ray.cluster_utils import Cluster

from pipeline.recipe import load_recipe
from pipeline.run import run
from tests.conftest import ROOT
from tests.corpus_digest import corpus_digest
from tests.crashes import leftovers

NODE = {"num_cpus": 1, "object_store_memory": 80 << 20}
HEAD = NODE | {"num_cpus": 0}  # tasks run on the two worker nodes only: the one killed is one of them
# A dead raylet is declared dead after period x threshold: 8 s instead of Ray's default 15 s, and
# still long enough that a live node on a busy machine is not declared dead by mistake.
FAST_HEALTH_CHECK = {"health_check_period_ms": 1000, "health_check_failure_threshold": 8}


@pytest.fixture
def cluster() -> Iterator[tuple[Cluster, str]]:
    """A head node without CPUs and two worker nodes of one CPU each, this process connected as
    the driver; yields the cluster and the head node's id."""
    c = Cluster(
        initialize_head=True,
        head_node_args={**HEAD, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECK},
    )
    for _ in range(2):
        c.add_node(**NODE)
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, c.head_node.node_id
    finally:
        ray.shutdown()
        c.shutdown()


def _recipe(tmp: Path) -> Path:
    """The default recipe, with absolute input paths and, after MinHash dedup (two corpus-wide
    plans into the run), the step that kills the worker node it first runs on."""
    data = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())
    for src in data["sources"]:
        src["path"] = str(ROOT / src["path"])
    at = next(i for i, s in enumerate(data["steps"]) if s["step"] == "minhash_dedup") + 1
    kill = {"step": "node_fault:KillNodeOnce", "head": str(tmp / "head"), "marker": str(tmp / "killed")}
    data["steps"].insert(at, kill)
    shutil.copy(ROOT / "tests" / "plugins" / "node_fault.py", tmp / "node_fault.py")
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_ray_run_equals_local_and_survives_a_lost_node(cluster: tuple[Cluster, str], tmp_path: Path) -> None:
    c, head = cluster
    recipe = _recipe(tmp_path)
    (tmp_path / "head").write_text(head)
    local = run(load_recipe(recipe, [f"output_dir={tmp_path / 'local'}", "workers=2"]))
    assert not (tmp_path / "killed").exists()  # the local run never kills anything

    result = run(load_recipe(recipe, [f"output_dir={tmp_path / 'ray'}", "executor=ray"]))
    killed = (tmp_path / "killed").read_text()  # the node the step ran on first
    alive = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
    assert alive[killed] is False and sum(alive.values()) == 2  # the head and the other worker
    assert corpus_digest(result.out) == corpus_digest(local.out)
    assert leftovers(result.out) == []
    units = {r["unit"] for r in local.sink_results}
    assert {r["unit"] for r in result.sink_results} == units
