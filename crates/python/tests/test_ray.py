"""The Ray executor against the local one, on a 3-node local Ray cluster.

Every distributed operation must give the same result on both executors
(same rows, same vectors, same index answers); killing a worker node in the
middle of an embedding run or an index build must not change the outcome.
Datasets are read back with pylance, independently of lanceflow.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import lanceflow
from conftest import write_records

lance = pytest.importorskip("lance")

QUERIES = ["river data search", "music garden", "ocean energy market"]


def read_rows(uri, columns=("id", "text", "vector")):
    table = lance.dataset(uri).to_table(columns=list(columns))
    order = np.argsort(table.column("id").to_numpy())
    return table.take(order)


def vectors(table):
    return np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)


def build(uri, records, executor, artifacts, tmp):
    """Ingest, embed, index (IVF_PQ on the pinned model, FTS): the seed's pipeline."""
    report = lanceflow.ingest(records, uri, max_rows_per_file=150, executor=executor, workers=2)
    assert report["rows_written"] == 1200
    lanceflow.embed(uri, "text", rows_per_task=150, executor=executor, workers=2)
    if artifacts is None:
        artifacts = os.path.join(tmp, "artifacts")
        model = {"save_artifacts": artifacts}
    else:
        model = {
            "centroids": os.path.join(artifacts, "centroids.npy"),
            "codebook": os.path.join(artifacts, "codebook.npy"),
        }
    lanceflow.create_index(
        uri,
        "vector",
        "IVF_PQ",
        metric="cosine",
        num_partitions=16,
        num_sub_vectors=48,
        rows_per_segment=300,
        keep_segments=True,  # four segments for the distributed search to spread over
        executor=executor,
        workers=2,
        **model,
    )
    lanceflow.create_scalar_index(uri, "text", "INVERTED", executor=executor, workers=2)
    return artifacts


@pytest.fixture(scope="module")
def pair(tmp_path_factory, records, ray_executor):
    tmp = str(tmp_path_factory.mktemp("pair"))
    local, remote = os.path.join(tmp, "local.lance"), os.path.join(tmp, "ray.lance")
    artifacts = build(local, records, None, None, tmp)
    build(remote, records, ray_executor, artifacts, tmp)
    return local, remote, artifacts


def assert_same_hits(a, b, score):
    if "query" in a.column_names:  # vector searches; text and hybrid take one query
        assert a.column("query").to_pylist() == b.column("query").to_pylist()
    assert a.column("id").to_pylist() == b.column("id").to_pylist()
    np.testing.assert_allclose(
        a.column(score).to_numpy(), b.column(score).to_numpy(), rtol=1e-5, atol=1e-5
    )


def test_pipeline_on_ray_equals_local(pair, ray_executor):
    local, remote, _ = pair
    a, b = read_rows(local), read_rows(remote)
    assert a.column("id").to_pylist() == list(range(1200))
    assert a.column("text") == b.column("text")
    va, vb = vectors(a), vectors(b)
    assert va.shape == (1200, 384)
    np.testing.assert_allclose(va, vb, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vb, axis=1), 1.0, atol=1e-4)

    for uri in (local, remote):
        indexes = {i["name"]: i for i in lanceflow.info(uri)["indices"]}
        assert len(indexes) == 2, indexes

    # Distributed ANN search planned by segment ownership, on each executor.
    hits_local = lanceflow.vector_search(
        local, query_text=QUERIES, k=10, nprobes=16, columns=["id"], distributed=True
    )
    hits_ray = lanceflow.vector_search(
        remote,
        query_text=QUERIES,
        k=10,
        nprobes=16,
        columns=["id"],
        distributed=True,
        executor=ray_executor,
    )
    assert hits_local.num_rows == 30
    assert_same_hits(hits_local, hits_ray, "_distance")
    # ... and equal to the in-process search through the index.
    in_process = lanceflow.vector_search(
        remote, query_text=QUERIES, k=10, nprobes=16, columns=["id"], distributed=False
    )
    assert_same_hits(in_process, hits_ray, "_distance")

    for q in QUERIES:
        assert_same_hits(
            lanceflow.search_text(local, q, k=10, columns=["id"]),
            lanceflow.search_text(remote, q, k=10, columns=["id"]),
            "_score",
        )
        hybrid = lanceflow.hybrid_search(remote, q, k=5, nprobes=16, columns=["id"])
        assert hybrid.num_rows == 5 and "_score" in hybrid.column_names
        assert_same_hits(
            lanceflow.hybrid_search(local, q, k=5, nprobes=16, columns=["id"]), hybrid, "_score"
        )
    report = lanceflow.cleanup(remote, "0s", dry_run=True)
    assert isinstance(report, dict)
    assert lance.dataset(remote).version == len(lanceflow.versions(remote))


def test_distributed_training_on_ray_equals_local(pair, ray_executor, tmp_path):
    """IVF k-means and PQ codebooks trained as tasks: on Ray (tasks spread
    over two nodes, each worker with its own caches) the artifacts are
    byte-identical to the local executor's with the same seed and workers."""
    _, remote, _ = pair
    copy = str(tmp_path / "copy.lance")
    shutil.copytree(remote, copy)
    saved = {}
    for name, executor in (("local", None), ("ray", ray_executor)):
        saved[name] = str(tmp_path / name)
        lanceflow.create_index(
            copy,
            "vector",
            "IVF_PQ",
            metric="cosine",
            num_partitions=16,
            num_sub_vectors=48,
            name="trained",
            distributed_training=True,
            seed=7,
            save_artifacts=saved[name],
            executor=executor,
            workers=2,
        )
    for artifact in ("centroids.npy", "codebook.npy"):
        local = np.load(os.path.join(saved["local"], artifact))
        ray = np.load(os.path.join(saved["ray"], artifact))
        assert local.shape == ray.shape and local.size > 0, artifact
        assert local.tobytes() == ray.tobytes(), artifact
    # No training scratch is left in the dataset's store.
    assert not glob.glob(os.path.join(copy, "_lanceflow", "train", "**", "*.npy"), recursive=True)
    hits = lanceflow.vector_search(
        copy, query_text=QUERIES, k=10, nprobes=16, columns=["id"], index="trained"
    )
    assert hits.num_rows == 30


def test_maintenance_on_ray_equals_local(pair, ray_executor, tmp_path):
    local, remote, _ = pair
    extra = write_records(str(tmp_path / "more.jsonl"), 300, seed=11, start=1200)
    for uri, ex in ((local, None), (remote, ray_executor)):
        lanceflow.ingest(extra, uri, mode="append", max_rows_per_file=60, executor=ex, workers=2)
        lanceflow.embed(uri, "text", rows_per_task=150, executor=ex, workers=2)
        opt = lanceflow.optimize_indices(uri, executor=ex, workers=2)
        assert opt is not None
        comp = lanceflow.compact_files(uri, executor=ex, workers=2)
        assert comp is not None
    a, b = read_rows(local), read_rows(remote)
    assert a.column("id").to_pylist() == list(range(1500))
    assert a.column("text") == b.column("text")
    np.testing.assert_allclose(vectors(a), vectors(b), atol=1e-6)
    assert [v["operation"] for v in lanceflow.versions(local)] == [
        v["operation"] for v in lanceflow.versions(remote)
    ]
    assert_same_hits(
        lanceflow.vector_search(local, query_text=QUERIES, k=10, nprobes=16, columns=["id"]),
        lanceflow.vector_search(
            remote, query_text=QUERIES, k=10, nprobes=16, columns=["id"], executor=ray_executor
        ),
        "_distance",
    )


class NodeKiller(lanceflow.RayExecutor):
    """Removes a worker node once the stage has reported `after` outcomes,
    while the other tasks are in flight."""

    def __init__(self, cluster, node, stage, after, **kw):
        super().__init__(**kw)
        self.cluster, self.node, self.stage, self.after = cluster, node, stage, after
        self.killed = False
        self.retried = 0

    def run(self, stage, tasks, sink):
        if stage != self.stage or self.killed:
            return super().run(stage, tasks, sink)
        outer = self

        class Sink:
            seen = 0

            def send(self, outcome):
                Sink.seen += 1
                if json.loads(outcome)["attempts"] > 1:
                    outer.retried += 1
                sink.send(outcome)
                if Sink.seen == outer.after and not outer.killed:
                    outer.killed = True
                    outer.cluster.remove_node(outer.node, allow_graceful=False)

            def cancelled(self):
                return sink.cancelled()

        return super().run(stage, tasks, Sink())


@pytest.mark.parametrize("stage", ["embed", "vector_index_segment"])
def test_worker_node_dies_mid_stage(cluster, pair, records, tmp_path, stage, ray_executor):
    c, nodes = cluster
    _, _, artifacts = pair
    ray_executor.shutdown()  # its warm actors hold the cluster's CPUs
    victim = nodes.pop()
    killer = NodeKiller(c, victim, stage, after=1, num_workers=2, max_retries=3, verbose=False)
    uri = str(tmp_path / "faulty.lance")
    try:
        build(uri, records, killer, artifacts, str(tmp_path))
    finally:
        killer.shutdown()
        nodes.append(c.add_node(num_cpus=1))
        c.wait_for_nodes()
    assert killer.killed, f"the node was never removed during '{stage}'"
    # A clean run on the local executor, with the same pinned index model.
    fresh_local = str(tmp_path / "clean.lance")
    build(fresh_local, records, None, artifacts, str(tmp_path))
    clean, faulty = read_rows(fresh_local), read_rows(uri)
    assert faulty.column("id").to_pylist() == list(range(1200))
    assert clean.column("text") == faulty.column("text")
    np.testing.assert_allclose(vectors(clean), vectors(faulty), atol=1e-6)
    assert_same_hits(
        lanceflow.vector_search(fresh_local, query_text=QUERIES, k=10, nprobes=16, columns=["id"]),
        lanceflow.vector_search(uri, query_text=QUERIES, k=10, nprobes=16, columns=["id"]),
        "_distance",
    )
    assert_same_hits(
        lanceflow.search_text(fresh_local, "river data", k=10, columns=["id"]),
        lanceflow.search_text(uri, "river data", k=10, columns=["id"]),
        "_score",
    )


def test_read_lance_pins_a_version_and_pushes_down(pair, cluster):
    _, remote, _ = pair
    ds = lance.dataset(remote)
    version = ds.version
    dataset = lanceflow.read_lance(
        remote, columns=["id", "text"], filter="id % 7 = 3", fragments_per_task=2
    )
    expected = ds.to_table(columns=["id", "text"], filter="id % 7 = 3")
    got = dataset.to_arrow_refs()
    import ray

    table = __import__("pyarrow").concat_tables(ray.get(got))
    assert table.schema.names == ["id", "text"]
    assert sorted(table.column("id").to_pylist()) == sorted(expected.column("id").to_pylist())
    assert table.num_rows == expected.num_rows > 0
    # Time travel: the first version (ingest only) has no vector column.
    first = lanceflow.read_lance(remote, version=1).take_all()
    assert len(first) == 1200 and "vector" not in first[0]
    with pytest.raises(lanceflow.NotFoundError, match="nope"):
        lanceflow.read_lance(remote, columns=["nope"])
    with pytest.raises(lanceflow.InvalidInputError):
        lanceflow.read_lance(remote, filter="id <<< 3")
    assert lance.dataset(remote).version == version


def test_write_lance_from_a_ray_dataset(cluster, tmp_path, ray_executor):
    import ray

    ds = ray.data.range(1000).map(lambda r: {"id": r["id"], "half": r["id"] / 2})
    uri = str(tmp_path / "written.lance")
    report = lanceflow.write_lance(ds, uri, max_rows_per_file=300, executor=ray_executor)
    assert report["rows_written"] == 1000 and report["version"] == 1
    table = lance.dataset(uri).to_table()
    assert sorted(table.column("id").to_pylist()) == list(range(1000))


def test_bad_input_raises_engine_exceptions(pair, ray_executor, tmp_path):
    local, remote, _ = pair
    version = lance.dataset(remote).version
    with pytest.raises(lanceflow.NotFoundError, match="nope"):
        lanceflow.create_index(remote, "nope", "IVF_FLAT", executor=ray_executor)
    with pytest.raises(lanceflow.InvalidInputError, match="dimension"):
        lanceflow.vector_search(remote, [0.1, 0.2, 0.3], executor=ray_executor)
    with pytest.raises(lanceflow.LanceflowError):
        lanceflow.embed(str(tmp_path / "missing.lance"), "text", executor=ray_executor)
    with pytest.raises(lanceflow.InvalidInputError, match="sub-vectors"):
        lanceflow.create_index(
            remote, "vector", "IVF_PQ", num_sub_vectors=7, executor=ray_executor
        )
    with pytest.raises(lanceflow.InvalidInputError):
        lanceflow.create_index(remote, "vector", "IVF_NOPE", executor=ray_executor)
    assert issubclass(lanceflow.NotFoundError, lanceflow.LanceflowError)
    assert lance.dataset(remote).version == version, "a failed call changed the dataset"


def test_cli_entry_point_runs_on_ray(cluster, pair, tmp_path, ray_executor):
    c, _ = cluster
    local, _, _ = pair
    ray_executor.shutdown()  # the CLI process starts its own pool
    env = dict(os.environ, LANCEFLOW_LOG="error")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lanceflow",
            "--executor",
            "ray",
            "--ray-address",
            c.address,
            "--json",
            "--quiet",
            "search",
            "vector",
            local,
            "--query-row",
            "5",
            "--k",
            "5",
            "--columns",
            "id",
            "--refine-factor",
            "10",
            "--distributed",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)["results"][0]["hits"]
    assert hits[0]["id"] == 5 and abs(hits[0]["_distance"]) < 1e-4
    assert "Ray executor with" in out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "lanceflow", "info", str(tmp_path / "none.lance")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and "error:" in bad.stderr


def test_a_hung_task_times_out_is_rerun_and_secrets_are_not_printed(
    cluster, records, tmp_path, ray_executor, capfd
):
    """A worker that hangs is killed after task_timeout and its task re-run
    after a backoff; the storage secret in the tasks is printed nowhere."""
    import time

    import ray

    from lanceflow.executor import RayExecutor, _backoff, _Worker

    ray_executor.shutdown()  # its warm actors hold the cluster's CPUs
    marker = str(tmp_path / "hung-once")

    class HangOnce(_Worker):
        def execute(self, spec_json):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return _Worker.execute(self, spec_json)
            os.close(fd)
            time.sleep(600)

    executor = RayExecutor(
        num_workers=2, max_retries=2, task_timeout=3, retry_backoff=0.2, verbose=False
    )
    executor._actor_cls = ray.remote(HangOnce).options(
        max_restarts=0, max_task_retries=0, num_cpus=1
    )
    secret = "do-not-print-9f3b2c"
    uri = str(tmp_path / "hung.lance")
    started = time.monotonic()
    try:
        report = lanceflow.ingest(
            records,
            uri,
            max_rows_per_file=150,
            executor=executor,
            storage_options={"aws_secret_access_key": secret},
        )
    finally:
        executor.shutdown()
    assert os.path.exists(marker), "no task ever hung"
    assert 3 <= time.monotonic() - started < 120
    assert report["rows_written"] == 1200
    assert sorted(lance.dataset(uri).to_table(columns=["id"]).column("id").to_pylist()) == list(
        range(1200)
    )
    out, err = capfd.readouterr()
    assert "ran past task_timeout" in err, err
    assert secret not in out + err
    for log in glob.glob("/tmp/ray/session_latest/logs/**", recursive=True):
        if not os.path.isfile(log):
            continue
        with open(log, errors="replace") as f:
            assert secret not in f.read(), log

    # Backoff: doubling from the base, capped, jittered down by at most half.
    assert _backoff(0.0, 3) == 0.0
    assert 0.5 <= _backoff(1.0, 1) <= 1.0
    assert 2.0 <= _backoff(1.0, 3) <= 4.0
    assert 30.0 <= _backoff(1.0, 20) <= 60.0
    with pytest.raises(lanceflow.InvalidInputError, match="task_timeout"):
        RayExecutor(task_timeout=-1, verbose=False)
