"""Reference figure for `lanceflow bench ingest`: pylance's write_dataset on
the same JSONL file, with the same rows per fragment. Prints one JSON line.

Usage: python3 scripts/bench_pylance_ingest.py INPUT.jsonl [MAX_ROWS_PER_FILE] [REPEAT]
"""
import json
import shutil
import statistics
import sys
import tempfile
import time

import lance
import pyarrow.json as pj


def main() -> None:
    path = sys.argv[1]
    max_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    runs = []
    rows = 0
    fragments = 0
    for i in range(repeat):
        scratch = tempfile.mkdtemp(prefix="pylance-bench-")
        try:
            start = time.perf_counter()
            table = pj.read_json(path)  # parse is part of an ingest
            ds = lance.write_dataset(table, f"{scratch}/run{i}.lance", max_rows_per_file=max_rows)
            runs.append(time.perf_counter() - start)
            rows = ds.count_rows()
            fragments = len(ds.get_fragments())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    best = min(runs)
    median = statistics.median(runs)
    print(json.dumps({
        "tool": f"pylance {lance.__version__}",
        "rows": rows,
        "fragments": fragments,
        "runs_seconds": runs,
        "best_seconds": best,
        "median_seconds": median,
        "best_rows_per_second": rows / best,
        "median_rows_per_second": rows / median,
    }))


if __name__ == "__main__":
    main()
