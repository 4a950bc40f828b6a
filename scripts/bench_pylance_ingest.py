"""Reference figure for `lanceflow-bench ingest`: pylance's write_dataset on
the same JSONL file, with the same rows per fragment. Prints one JSON line.

Usage: python3 scripts/bench_pylance_ingest.py INPUT.jsonl [MAX_ROWS_PER_FILE] [REPEAT] [--json]
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
    as_json = "--json" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--json"]
    path = args[0]
    max_rows = int(args[1]) if len(args) > 1 else 10_000
    repeat = int(args[2]) if len(args) > 2 else 3
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
    report = {
        "tool": f"pylance {lance.__version__}",
        "rows": rows,
        "fragments": fragments,
        "runs_seconds": runs,
        "best_seconds": best,
        "median_seconds": median,
        "best_rows_per_second": rows / best,
        "median_rows_per_second": rows / median,
    }
    if as_json:
        print(json.dumps(report))
    else:
        print(
            f"{report['tool']} write_dataset: {rows} rows -> {fragments} fragments; "
            f"best {best:.3f}s ({rows / best:.0f} rows/s), median {median:.3f}s "
            f"({rows / median:.0f} rows/s) over {repeat} run(s)"
        )


if __name__ == "__main__":
    main()
