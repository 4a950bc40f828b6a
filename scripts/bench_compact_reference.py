#!/usr/bin/env python3
"""Reference figures for `lanceflow-bench maintain`: compaction of copies of the
same dataset (as `lanceflow-bench maintain` left it just before its own compaction) with
pylance's `optimize.compact_files` (one process) and lance-ray's `compact_files`
(distributed over WORKERS Ray workers), when installed; default options, as
lanceflow's run.

Usage: bench_compact_reference.py DATASET [--workers 2]
Prints one JSON object.
"""
import argparse
import json
import os
import shutil
import tempfile
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = {}
    try:
        import lance
    except ImportError:
        print(json.dumps({"pylance": "not installed (pip install pylance==14.0.2)"}))
        return
    scratch = tempfile.mkdtemp(prefix="lanceflow-compact-ref-")
    try:
        uri = os.path.join(scratch, "pylance.lance")
        shutil.copytree(args.dataset, uri)
        ds = lance.dataset(uri)
        before = len(ds.get_fragments())
        t = time.perf_counter()
        ds.optimize.compact_files()
        out["pylance_compact_s"] = time.perf_counter() - t
        out["fragments"] = [before, len(lance.dataset(uri).get_fragments())]
        try:
            import lance_ray
            import ray
        except ImportError:
            out["lance_ray"] = "not installed (pip install lance-ray==0.5.0)"
        else:
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            uri2 = os.path.join(scratch, "lanceray.lance")
            shutil.copytree(args.dataset, uri2)
            t = time.perf_counter()
            lance_ray.compact_files(uri2, num_workers=args.workers)
            out["lance_ray_compact_s"] = time.perf_counter() - t
            out["lance_ray_fragments_after"] = len(lance.dataset(uri2).get_fragments())
            ray.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
