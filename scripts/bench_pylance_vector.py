#!/usr/bin/env python3
"""Reference figures for `lanceflow-bench vector`: the same data through pylance
(single process) and, when installed, lance-ray (Ray, 2 workers).

Usage: bench_pylance_vector.py DATA_DIR [--partitions 316] [--sub-vectors 48] [--workers 2]
                               [--serve | --ray-only]
DATA_DIR is what `lanceflow-bench vector --scratch DIR` kept: vectors.parquet, queries.npy.
Prints one JSON object.

--serve: the co-process of `lanceflow-bench vector`, which interleaves its own search
rounds with pylance's so that both see the same machine (timings on a shared machine
drift by tens of percent within a minute). Builds pylance's index, prints one JSON line,
then answers each line read from stdin: `own` (search pylance's index) or `ours` (search
the index lanceflow built, DATA_DIR/vectors.lance) runs every query once and prints one
JSON line with the latency of each query and the recall; `quit` ends.
--ray-only: lance-ray's build and `vector_search` only (pylance is measured by the bench).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time

import numpy as np
import pyarrow.parquet as pq


def p50(lat):
    """The median (mean of the two middle values for an even count), as
    lanceflow-bench reports p50 (crates/bench/src/stats.rs)."""
    return statistics.median(lat)


def p99(lat):
    """Nearest rank, as lanceflow-bench reports it: sorted[ceil(0.99 n) - 1]."""
    return sorted(lat)[max(1, math.ceil(99 * len(lat) / 100)) - 1]


def recall(truth, found):
    return float(np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found)]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--sub-vectors", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nprobes", type=int, default=10)
    ap.add_argument("--refine", type=int, default=5)
    ap.add_argument("--metric", default="l2")
    ap.add_argument("--max-rows-per-file", type=int, default=10_000)
    ap.add_argument("--type", default="IVF_PQ")
    ap.add_argument("--ours", default=None, help="lanceflow's dataset (default DATA_DIR/vectors.lance)")
    ap.add_argument("--skip-ray", action="store_true")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true")
    mode.add_argument("--ray-only", action="store_true")
    args = ap.parse_args()

    import lance

    table = pq.read_table(os.path.join(args.data_dir, "vectors.parquet"))
    queries = np.load(os.path.join(args.data_dir, "queries.npy")).astype(np.float32)
    data = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    rows, dim = data.shape
    partitions = args.partitions or max(16, min(4096, round(rows ** 0.5)))
    sub_vectors = args.sub_vectors or dim // 8

    # Exact ground truth (squared L2 / cosine on unit vectors order the same way).
    truth = []
    for q in queries:
        d = ((data - q) ** 2).sum(axis=1) if args.metric == "l2" else 1 - data @ q
        idx = np.argpartition(d, args.k)[: args.k]
        truth.append(idx[np.argsort(d[idx], kind="stable")].tolist())

    out = {"rows": rows, "dim": dim, "partitions": partitions, "sub_vectors": sub_vectors,
           "pylance_version": lance.__version__}
    nearest = {"column": "vector", "k": args.k, "nprobes": args.nprobes,
               "refine_factor": args.refine}

    def search_all(ds):
        """Every query once: per-query latency (ms) and the recall."""
        lat, found = [], []
        for q in queries:
            t = time.perf_counter()
            res = ds.to_table(nearest=dict(nearest, q=q), columns=["id"])
            lat.append((time.perf_counter() - t) * 1000)
            found.append(res.column("id").to_pylist())
        return lat, recall(truth, found)

    def warm(ds):
        ds.to_table(nearest=dict(nearest, q=queries[0]), columns=["id"])
        return ds

    def measure(ds, label):
        lat, rec = search_all(warm(ds))
        out[f"{label}_recall_at_k"] = rec
        out[f"{label}_p50_ms"] = p50(lat)
        out[f"{label}_p99_ms"] = p99(lat)

    if not args.ray_only:
        uri = os.path.join(args.data_dir, "pylance.lance")
        shutil.rmtree(uri, ignore_errors=True)
        ds = lance.write_dataset(table, uri, max_rows_per_file=args.max_rows_per_file)
        t = time.perf_counter()
        extra = {"num_sub_vectors": sub_vectors} if args.type.endswith("PQ") else {}
        ds.create_index("vector", index_type=args.type, metric=args.metric,
                        num_partitions=partitions, **extra)
        out["pylance_build_s"] = time.perf_counter() - t
        own = warm(lance.dataset(uri))
        ours_uri = args.ours or os.path.join(args.data_dir, "vectors.lance")
        ours = warm(lance.dataset(ours_uri)) if args.ours or os.path.isdir(ours_uri) else None
        if args.serve:
            print(json.dumps(out), flush=True)
            for line in sys.stdin:
                which = line.strip()
                if which == "quit":
                    break
                target = {"own": own, "ours": ours}.get(which)
                if target is None:
                    print(json.dumps({"error": f"unknown request {which!r}"}), flush=True)
                    continue
                lat, rec = search_all(target)
                print(json.dumps({"latencies_ms": lat, "recall_at_k": rec}), flush=True)
            return
        # pylance searching lanceflow's own index: the same index, so the gap
        # to lanceflow's in-process figure is the search path alone.
        if ours is not None:
            measure(ours, "pylance_on_lanceflow_index")
        measure(own, "pylance")

    if not args.skip_ray and not args.serve:
        try:
            import lance_ray
            import ray
        except ImportError:
            out["lance_ray"] = "not installed"
        else:
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            uri2 = os.path.join(args.data_dir, "lanceray.lance")
            shutil.rmtree(uri2, ignore_errors=True)
            lance.write_dataset(table, uri2, max_rows_per_file=args.max_rows_per_file)
            t = time.perf_counter()
            lance_ray.create_index(uri2, column="vector", index_type="IVF_PQ", metric=args.metric,
                                   num_partitions=partitions, num_sub_vectors=sub_vectors,
                                   num_workers=args.workers)
            out["lance_ray_build_s"] = time.perf_counter() - t
            measure(lance.dataset(uri2), "lance_ray_index")
            lat = []
            for q in queries[:20]:
                t = time.perf_counter()
                lance_ray.vector_search(uri2, nearest={"column": "vector", "q": q, "k": args.k,
                                                       "nprobes": args.nprobes,
                                                       "refine_factor": args.refine},
                                        columns=["id"], num_workers=args.workers)
                lat.append((time.perf_counter() - t) * 1000)
            out["lance_ray_vector_search_p50_ms"] = p50(lat)
            ray.shutdown()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
