#!/usr/bin/env python3
"""Reference figures for `lanceflow-bench text`: full-text (INVERTED) index build
time on copies of the same dataset with pylance (one process) and lance-ray's
`create_scalar_index` (distributed over WORKERS Ray workers), when installed.

Usage: bench_fts_reference.py DATASET [--column text] [--workers 2]
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
    parser.add_argument("--column", default="text")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = {}
    try:
        import lance
    except ImportError:
        print(json.dumps({"pylance": "not installed (pip install pylance==14.0.2)"}))
        return
    scratch = tempfile.mkdtemp(prefix="lanceflow-fts-ref-")
    try:
        uri = os.path.join(scratch, "pylance.lance")
        shutil.copytree(args.dataset, uri)
        ds = lance.dataset(uri)
        t = time.perf_counter()
        ds.create_scalar_index(args.column, index_type="INVERTED", name="ref_fts", replace=True)
        out["pylance_fts_build_s"] = time.perf_counter() - t
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
            lance_ray.create_scalar_index(uri2, column=args.column, index_type="INVERTED",
                                          name="ref_fts", num_workers=args.workers)
            out["lance_ray_fts_build_s"] = time.perf_counter() - t
            ray.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
