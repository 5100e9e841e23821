"""The Ray executor on a real two-node Ray cluster started on this machine: the same recipe gives
the local executor's corpus, byte for byte, even when a worker node dies mid-run."""

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
# A dead raylet is declared dead after period x threshold: 1.5 s instead of Ray's default 15 s.
FAST_HEALTH_CHECK = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}


@pytest.fixture
def cluster() -> Iterator[tuple[Cluster, str]]:
    """A head node and a second node, one CPU each, this process connected as the driver;
    yields the cluster and the second node's id."""
    c = Cluster(
        initialize_head=True,
        head_node_args={**NODE, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECK},
    )
    worker = c.add_node(**NODE)
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, worker.node_id
    finally:
        ray.shutdown()
        c.shutdown()


def _recipe(tmp: Path) -> Path:
    """The default recipe, with absolute input paths and, after MinHash dedup (two corpus-wide
    plans into the run), the step that kills the second node the first time it runs there."""
    data = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())
    for src in data["sources"]:
        src["path"] = str(ROOT / src["path"])
    at = next(i for i, s in enumerate(data["steps"]) if s["step"] == "minhash_dedup") + 1
    kill = {"step": "node_fault:KillNodeOnce", "target": str(tmp / "target"), "marker": str(tmp / "killed")}
    data["steps"].insert(at, kill)
    shutil.copy(ROOT / "tests" / "plugins" / "node_fault.py", tmp / "node_fault.py")
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_ray_run_equals_local_and_survives_a_lost_node(cluster: tuple[Cluster, str], tmp_path: Path) -> None:
    c, worker_node = cluster
    recipe = _recipe(tmp_path)
    (tmp_path / "target").write_text(worker_node)
    local = run(load_recipe(recipe, [f"output_dir={tmp_path / 'local'}", "workers=2"]))
    assert not (tmp_path / "killed").exists()  # the local run never kills anything

    result = run(load_recipe(recipe, [f"output_dir={tmp_path / 'ray'}", "executor=ray"]))
    assert (tmp_path / "killed").exists(), "the second node never ran the step: nothing was tested"
    alive = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
    assert alive[worker_node] is False
    assert corpus_digest(result.out) == corpus_digest(local.out)
    assert leftovers(result.out) == []
    units = {r["unit"] for r in local.sink_results}
    assert {r["unit"] for r in result.sink_results} == units
