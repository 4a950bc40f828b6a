#!/usr/bin/env python3
"""Reference figures for `lanceflow bench vector`: the same data through pylance
(single process) and, when installed, lance-ray (Ray, 2 workers).

Usage: bench_pylance_vector.py DATA_DIR [--partitions 316] [--sub-vectors 48] [--workers 2]
DATA_DIR is what `lanceflow bench vector --scratch DIR` kept: vectors.parquet, queries.npy.
Prints one JSON object.
"""
import argparse
import json
import os
import shutil
import time

import numpy as np
import pyarrow.parquet as pq


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
    ap.add_argument("--skip-ray", action="store_true")
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

    out = {"rows": rows, "dim": dim, "partitions": partitions, "sub_vectors": sub_vectors}
    uri = os.path.join(args.data_dir, "pylance.lance")
    shutil.rmtree(uri, ignore_errors=True)
    ds = lance.write_dataset(table, uri, max_rows_per_file=10_000)

    def measure(ds, label):
        lat, found = [], []
        q0 = queries[0]
        ds.to_table(nearest={"column": "vector", "q": q0, "k": args.k, "nprobes": args.nprobes,
                             "refine_factor": args.refine}, columns=["id"])
        for q in queries:
            t = time.perf_counter()
            res = ds.to_table(nearest={"column": "vector", "q": q, "k": args.k,
                                       "nprobes": args.nprobes, "refine_factor": args.refine},
                              columns=["id"])
            lat.append((time.perf_counter() - t) * 1000)
            found.append(res.column("id").to_pylist())
        lat.sort()
        out[f"{label}_recall_at_k"] = recall(truth, found)
        out[f"{label}_p50_ms"] = lat[len(lat) // 2]
        out[f"{label}_p99_ms"] = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]

    # pylance searching lanceflow's own index: the same index, so the gap to
    # lanceflow's in-process figure is the search path alone.
    ours = os.path.join(args.data_dir, "vectors.lance")
    if os.path.isdir(ours):
        measure(lance.dataset(ours), "pylance_on_lanceflow_index")

    t = time.perf_counter()
    ds.create_index("vector", index_type="IVF_PQ", metric=args.metric, num_partitions=partitions,
                    num_sub_vectors=sub_vectors)
    out["pylance_build_s"] = time.perf_counter() - t
    measure(lance.dataset(uri), "pylance")

    if not args.skip_ray:
        try:
            import lance_ray
            import ray
        except ImportError:
            out["lance_ray"] = "not installed"
        else:
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            uri2 = os.path.join(args.data_dir, "lanceray.lance")
            shutil.rmtree(uri2, ignore_errors=True)
            lance.write_dataset(table, uri2, max_rows_per_file=10_000)
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
            lat.sort()
            out["lance_ray_vector_search_p50_ms"] = lat[len(lat) // 2]
            ray.shutdown()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
