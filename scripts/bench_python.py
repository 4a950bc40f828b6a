"""Benchmark: what the Python package costs over the Rust engine.

Three measurements, each side by side in one run:

* per-call overhead: single-query `lanceflow.vector_search` and
  `lanceflow.search_text` (in-process), Python wall time minus the engine's
  own time for the call (`lanceflow.seconds` in the result's schema
  metadata: from the request to the typed results, before the table);
* 100 batched vector queries returned as a pyarrow Table: the typed binding
  vs the former path (the same search as a command line run in-process,
  its JSON output parsed and rebuilt into a Table);
* streaming READ_ROWS rows: `lanceflow.read_lance` (a Ray Dataset of our
  read tasks) vs pylance's own scan (`LanceDataset.to_batches`), our read
  tasks run one after another in this process (no Ray), and Ray Data's
  `read_lance` (pylance inside Ray tasks), on a local Ray instance.

Usage: python3 scripts/bench_python.py [--rows 100000] [--dim 128] [--read-rows 1000000]
Prints a JSON report (and lines on stderr).
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WORDS = (
    "alpha beta gamma delta river mountain forest ocean cloud stone light shadow "
    "engine signal vector index search memory garden winter summer market"
).split()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_parquet(path: str, rows: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = random.Random(seed)
    step = 100_000
    writer = None
    for start in range(0, rows, step):
        n = min(step, rows - start)
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        texts = [" ".join(words.choices(WORDS, k=8)) for _ in range(n)]
        table = pa.table(
            {
                "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "text": pa.array(texts),
                "score": pa.array(rng.random(n, dtype=np.float32)),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def per_call(lanceflow, uri: str, queries: np.ndarray, words: list) -> dict:
    """Median wall time, engine time and their difference per call."""

    def measure(call):
        walls, engines = [], []
        for _ in range(5):  # warm: the index and the session cache
            call(0)
        for i in range(len(queries)):
            t = time.perf_counter()
            table = call(i)
            walls.append(time.perf_counter() - t)
            engines.append(float(table.schema.metadata[b"lanceflow.seconds"]))
        over = sorted(w - e for w, e in zip(walls, engines))
        return {
            "calls": len(walls),
            "wall_ms_p50": 1e3 * statistics.median(walls),
            "engine_ms_p50": 1e3 * statistics.median(engines),
            "overhead_ms_p50": 1e3 * statistics.median(over),
            "overhead_ms_p90": 1e3 * over[int(0.9 * (len(over) - 1))],
        }

    vector = measure(
        lambda i: lanceflow.vector_search(
            uri, queries[i], k=10, columns=["id", "text"], distributed=False, nprobes=8
        )
    )
    text = measure(
        lambda i: lanceflow.search_text(uri, words[i % len(words)], k=10, columns=["id", "text"])
    )
    return {"vector_search": vector, "search_text": text}


def batched(lanceflow, uri: str, queries: np.ndarray, runs: int) -> dict:
    """100 queries in one call: the typed binding vs the JSON command line."""
    from lanceflow import _native

    def typed():
        return lanceflow.vector_search(uri, queries, k=10, columns=["id", "text"], distributed=False, nprobes=8)

    def via_json():
        argv = ["lanceflow", "--json", "--quiet", "search", "vector", uri,
                "--query-vector", json.dumps(queries.tolist()), "-k", "10",
                "--columns", "id,text", "--nprobes", "8"]
        _, out = _native.run_cli(argv, None, capture=True)
        rows = [{"query": r["query"], **h} for r in json.loads(out)["results"] for h in r["hits"]]
        return pa.Table.from_pylist(rows)

    a, b = typed(), via_json()  # warm both, and check they agree
    if a.num_rows != b.num_rows or a.column("_rowid").to_pylist() != b.column("_rowid").to_pylist():
        raise SystemExit("the typed and JSON paths returned different hits")
    times = {"typed": [], "json": []}
    engine = []
    for _ in range(runs):
        for name, fn in (("typed", typed), ("json", via_json)):
            t = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t)
            if name == "typed":
                engine.append(float(out.schema.metadata[b"lanceflow.seconds"]))
    typed_s, json_s = statistics.median(times["typed"]), statistics.median(times["json"])
    engine_s = statistics.median(engine)
    # The search itself is the same engine call on both paths: what differs
    # is everything around it (arguments in, results out as a Table).
    return {
        "queries": len(queries),
        "hits": a.num_rows,
        "typed_ms_p50": 1e3 * typed_s,
        "json_ms_p50": 1e3 * json_s,
        "engine_ms_p50": 1e3 * engine_s,
        "speedup": json_s / typed_s,
        "typed_around_search_ms": 1e3 * (typed_s - engine_s),
        "json_around_search_ms": 1e3 * (json_s - engine_s),
        "around_search_speedup": (json_s - engine_s) / max(typed_s - engine_s, 1e-9),
        "typed_types": {f.name: str(f.type) for f in a.schema},
        "json_types": {f.name: str(f.type) for f in b.schema},
    }


def streaming(lanceflow, uri: str, runs: int) -> dict:
    """Rows per second streaming the whole dataset, three ways."""
    import lance
    import ray

    def pylance():
        return sum(b.num_rows for b in lance.dataset(uri).to_batches(columns=["id", "text", "score"]))

    def tasks_in_process():
        from lanceflow import _native, api

        session = api._session()
        tasks = _native.plan_read(session, uri, None, None, ["id", "text", "score"], None, 1)
        return sum(_native.read_task(t).num_rows for t in tasks)

    def ours():
        ds = lanceflow.read_lance(uri, columns=["id", "text", "score"])
        return sum(b.num_rows for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))

    def ray_data():
        ds = ray.data.read_lance(uri, columns=["id", "text", "score"])
        return sum(b.num_rows for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))

    out = {}
    ways = (
        ("pylance_to_batches", pylance),
        ("lanceflow_read_tasks_no_ray", tasks_in_process),
        ("lanceflow_read_lance", ours),
        ("ray_data_read_lance", ray_data),
    )
    for name, fn in ways:
        fn()  # warm: page cache, Ray workers
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            rows = fn()
            times.append(time.perf_counter() - t)
        best = statistics.median(times)
        out[name] = {"rows": rows, "seconds_p50": best, "rows_per_s": rows / best}
        log(f"  {name}: {rows} rows in {best:.3f} s ({rows / best:,.0f} rows/s)")
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--read-rows", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--scratch", default=None)
    args = p.parse_args()

    import lanceflow

    scratch = args.scratch or tempfile.mkdtemp(prefix="lanceflow-bench-python-")
    os.makedirs(scratch, exist_ok=True)
    report = {"rows": args.rows, "dim": args.dim}
    try:
        src = os.path.join(scratch, "search.parquet")
        uri = os.path.join(scratch, "search.lance")
        log(f"bench_python: {args.rows} rows x {args.dim}-d with text, IVF_SQ and INVERTED indexes")
        write_parquet(src, args.rows, args.dim, seed=1)
        lanceflow.ingest(src, uri, mode="overwrite", max_rows_per_file=args.rows // 4 or 1)
        lanceflow.create_index(uri, "vector", "IVF_SQ", num_partitions=64)
        lanceflow.create_scalar_index(uri, "text", "INVERTED")
        rng = np.random.default_rng(7)
        queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        words = [" ".join(random.Random(i).choices(WORDS, k=2)) for i in range(args.queries)]
        report["per_call"] = per_call(lanceflow, uri, queries, words)
        for name, r in report["per_call"].items():
            log(f"  {name}: wall {r['wall_ms_p50']:.3f} ms, engine {r['engine_ms_p50']:.3f} ms, "
                f"Python's share {r['overhead_ms_p50']:.3f} ms (p90 {r['overhead_ms_p90']:.3f})")
        report["batched_100"] = batched(lanceflow, uri, queries[:100], args.runs)
        b = report["batched_100"]
        log(f"  100 queries: typed {b['typed_ms_p50']:.2f} ms, JSON path {b['json_ms_p50']:.2f} ms "
            f"({b['speedup']:.2f}x); the search itself {b['engine_ms_p50']:.2f} ms; around it "
            f"{b['typed_around_search_ms']:.2f} vs {b['json_around_search_ms']:.2f} ms "
            f"({b['around_search_speedup']:.1f}x)")

        if args.read_rows:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
            src = os.path.join(scratch, "read.parquet")
            read_uri = os.path.join(scratch, "read.lance")
            log(f"bench_python: streaming {args.read_rows} rows")
            write_parquet(src, args.read_rows, 16, seed=2)
            lanceflow.ingest(src, read_uri, mode="overwrite", max_rows_per_file=args.read_rows // 8 or 1)
            report["read_lance"] = streaming(lanceflow, read_uri, args.runs)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
