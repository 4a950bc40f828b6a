"""Fixtures: a local Ray cluster (a head that only drives and two worker
nodes), synthetic text records, and a pinned IVF model so index builds on
both executors are comparable row for row."""

import json
import os
import random

import pytest

WORDS = (
    "river mountain data vector search index cluster engine lance ray table column "
    "fragment version commit storage object model text query answer token embed "
    "music garden science history ocean forest city light energy market school"
).split()


def write_records(path, rows, seed=7, start=0):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(start, start + rows):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
            record = {
                "id": i,
                "title": f"{words[0]} {words[-1]}",
                "text": " ".join(words),
                "group": f"g{i % 5}",
            }
            f.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="session")
def cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0},
    )
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="warning")
    yield c, nodes
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="session")
def ray_executor(cluster):
    import lanceflow

    executor = lanceflow.RayExecutor(num_workers=2, max_retries=3)
    yield executor
    executor.shutdown()


@pytest.fixture(scope="session")
def records(tmp_path_factory):
    d = tmp_path_factory.mktemp("records")
    return write_records(os.path.join(d, "records.jsonl"), 1200)
