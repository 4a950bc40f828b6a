"""The Python API: one function per distributed operation.

Each function states its operation as the command line would (the Rust CLI
validates every argument, so both front ends accept and reject exactly the
same input) and runs it in-process through ``_native.run_cli``, on the local
executor or on Ray. Reports come back as dicts, search results as pyarrow
Tables, and failures as the exception class of their engine error kind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import pyarrow as pa

from . import _native, errors
from .executor import RayExecutor, executor_factory

Executor = Union[None, str, RayExecutor]


class _Command:
    """A command line under construction."""

    def __init__(self, *words: str) -> None:
        self.argv: List[str] = list(words)

    def value(self, name: str, value: Any) -> "_Command":
        if value is None:
            return self
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        self.argv += [f"--{name}", str(value)]
        return self

    def repeated(self, name: str, values: Optional[Iterable[Any]]) -> "_Command":
        for v in values or ():
            self.argv += [f"--{name}", str(v)]
        return self

    def flag(self, name: str, on: Optional[bool]) -> "_Command":
        if on:
            self.argv.append(f"--{name}")
        return self


def _run(
    command: _Command,
    executor: Executor = None,
    storage_options: Optional[Mapping[str, str]] = None,
    workers: Optional[int] = None,
    progress: bool = False,
) -> Any:
    """Run a command in-process and decode its JSON output."""
    argv = ["lanceflow", "--json"]
    if not progress:
        argv.append("--quiet")
    for key, val in (storage_options or {}).items():
        argv += ["--storage-option", f"{key}={val}"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    factory = None
    if executor is None:
        # As the CLI: LANCEFLOW_EXECUTOR=ray makes Ray the default.
        executor = os.environ.get("LANCEFLOW_EXECUTOR") or None
        if executor not in (None, "local", "ray"):
            raise errors.InvalidInputError(
                f"LANCEFLOW_EXECUTOR must be 'local' or 'ray', not {executor!r}"
            )
    if executor is None or executor == "local":
        pass
    elif executor == "ray" or isinstance(executor, RayExecutor) or hasattr(executor, "run"):
        argv += ["--executor", "ray"]
        factory = executor_factory(None if executor == "ray" else executor)
    else:
        raise errors.InvalidInputError(
            f"executor must be 'local', 'ray' or a RayExecutor, not {executor!r}"
        )
    _, out = _native.run_cli(argv + command.argv, factory, capture=True)
    out = out.strip()
    return json.loads(out) if out else None


def _common(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    allowed = {"executor", "storage_options", "workers", "progress"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return kwargs


def _hits_table(results: Dict[str, Any]) -> pa.Table:
    """``{"results": [{"query": i, "hits": [...]}, ...]}`` → one table with a
    ``query`` column (the query's position) and one row per hit, best first."""
    rows = []
    for result in results.get("results", []):
        for hit in result.get("hits", []):
            rows.append({"query": result.get("query", 0), **hit})
    return pa.Table.from_pylist(rows)


# -- ingest ----------------------------------------------------------------


def ingest(
    inputs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    uri: str,
    *,
    mode: str = "create",
    format: Optional[str] = None,
    max_rows_per_file: Optional[int] = None,
    columns: Optional[Sequence[str]] = None,
    idempotency_key: Optional[str] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Load JSONL, Parquet, CSV or Arrow files into a dataset: one task per
    file (or part of a large JSONL file), one commit. With Ray, the files must
    be readable from every node (a shared filesystem). ``idempotency_key``
    names the job: re-run with the same key after it had committed, it
    writes nothing (``already_applied`` in the report)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    cmd = _Command("ingest", *[os.fspath(i) for i in inputs]).value("to", uri)
    cmd.value("mode", mode).value("format", format).value("max-rows-per-file", max_rows_per_file)
    cmd.value("columns", columns).value("idempotency-key", idempotency_key)
    return _run(cmd, **_common(common))


def write_lance(
    data: Any,
    uri: str,
    *,
    mode: str = "create",
    max_rows_per_file: Optional[int] = None,
    staging_dir: Optional[str] = None,
    min_rows_per_file: Optional[int] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Write a pyarrow Table, RecordBatchReader, pandas DataFrame or Ray
    Dataset as one new dataset version.

    The data is staged as Parquet files (a Ray Dataset writes its blocks in
    parallel) and ingested with one task per file and one commit; the staging
    directory (default: a temporary one, which must be visible to every node
    when the executor is Ray) is removed afterwards. ``min_rows_per_file``
    lets Ray gather small blocks into larger staged files."""
    owned = staging_dir is None
    stage = staging_dir or tempfile.mkdtemp(prefix="lanceflow-stage-")
    try:
        if hasattr(data, "write_parquet") and hasattr(data, "map_batches"):
            if min_rows_per_file is not None:
                data.write_parquet(stage, min_rows_per_file=int(min_rows_per_file))
            else:
                data.write_parquet(stage)
        else:
            import pyarrow.parquet as pq

            if hasattr(data, "read_all"):
                data = data.read_all()
            elif not isinstance(data, pa.Table):
                data = pa.Table.from_pandas(data, preserve_index=False)
            pq.write_table(data, os.path.join(stage, "part-0.parquet"))
        files = sorted(
            os.path.join(stage, f) for f in os.listdir(stage) if f.endswith(".parquet")
        )
        if not files:
            raise errors.InvalidInputError("write_lance: the data holds no rows")
        return ingest(
            files, uri, mode=mode, format="parquet", max_rows_per_file=max_rows_per_file, **common
        )
    finally:
        if owned:
            shutil.rmtree(stage, ignore_errors=True)


def read_lance(
    uri: str,
    *,
    columns: Optional[Sequence[str]] = None,
    filter: Optional[str] = None,
    version: Optional[int] = None,
    tag: Optional[str] = None,
    fragments_per_task: int = 1,
    storage_options: Optional[Mapping[str, str]] = None,
    ray_remote_args: Optional[Mapping[str, Any]] = None,
) -> Any:
    """A Ray Dataset over one pinned version of a dataset.

    The driver pins the version (latest, ``version`` or ``tag``), checks the
    columns and the filter, and plans one read task per
    ``fragments_per_task`` fragments; each task scans only its fragments
    with the projection and the filter pushed down into the scan (in Rust),
    so a later commit to the dataset does not change what the Dataset holds.
    """
    import ray

    tasks = _native.plan_read(
        uri,
        version,
        tag,
        list(columns) if columns is not None else None,
        filter,
        fragments_per_task,
        dict(storage_options or {}),
    )
    if not tasks:
        raise errors.InvalidInputError(f"{uri} has no fragments to read")

    def read(batch: pa.Table) -> pa.Table:
        from lanceflow import _native as native

        tables = [
            pa.ipc.open_stream(native.read_task(t)).read_all()
            for t in batch.column("task").to_pylist()
        ]
        return pa.concat_tables(tables)

    items = ray.data.from_items([{"task": t} for t in tasks], override_num_blocks=len(tasks))
    return items.map_batches(
        read, batch_size=1, batch_format="pyarrow", **dict(ray_remote_args or {})
    )


# -- embeddings ------------------------------------------------------------


def embed(
    uri: str,
    column: Optional[str] = None,
    *,
    to_column: Optional[str] = None,
    template: Optional[str] = None,
    max_chars: Optional[int] = None,
    replace: bool = False,
    to: Optional[str] = None,
    rows_per_task: Optional[int] = None,
    model: Optional[str] = None,
    backend: Optional[str] = None,
    onnx: Optional[str] = None,
    threads: Optional[int] = None,
    batch_size: Optional[int] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Embed a text column (or a template over columns) with all-MiniLM-L6-v2
    into a new vector column: one task per fragment group, one commit; on Ray
    the tasks run on a warm pool of actors that each load the model once.
    Resumable: re-running finishes only what is missing."""
    cmd = _Command("embed", uri).value("column", column).value("to-column", to_column)
    cmd.value("template", template).value("max-chars", max_chars).flag("replace", replace)
    cmd.value("to", to).value("rows-per-task", rows_per_task).value("model", model)
    cmd.value("backend", backend).value("onnx", onnx).value("threads", threads)
    cmd.value("batch-size", batch_size)
    return _run(cmd, **_common(common))


# -- indexes ---------------------------------------------------------------


def create_index(
    uri: str,
    column: str = "vector",
    index_type: str = "IVF_PQ",
    *,
    metric: Optional[str] = None,
    num_partitions: Optional[int] = None,
    num_sub_vectors: Optional[int] = None,
    num_bits: Optional[int] = None,
    sample_rate: Optional[int] = None,
    max_iters: Optional[int] = None,
    name: Optional[str] = None,
    replace: bool = True,
    rows_per_segment: Optional[int] = None,
    centroids: Optional[str] = None,
    codebook: Optional[str] = None,
    save_artifacts: Optional[str] = None,
    training: Optional[str] = None,
    distributed_training: bool = False,
    seed: Optional[int] = None,
    keep_segments: bool = False,
    **common: Any,
) -> Dict[str, Any]:
    """Build a vector index: train once, one segment per batch of fragments
    on the workers, one commit. ``training`` says who trains the IVF
    centroids and PQ codebook: ``"distributed"`` as tasks on the executor
    (seeded: the same ``seed``, data and worker count give byte-identical
    artifacts), ``"lance"`` with the lance crate on the driver, ``"auto"``
    (the default) distributed up to 1024 partitions, lance above.
    ``distributed_training=True`` is ``training="distributed"``. The
    segments are merged into one before the commit (faster queries) unless
    ``keep_segments``: kept segments are what a distributed search spreads over."""
    cmd = _Command("index", "vector", uri).value("column", column).value("type", index_type)
    cmd.value("metric", metric).value("partitions", num_partitions)
    cmd.value("sub-vectors", num_sub_vectors).value("num-bits", num_bits)
    cmd.value("sample-rate", sample_rate).value("max-iters", max_iters).value("name", name)
    cmd.flag("replace" if replace else "no-replace", True)
    cmd.value("rows-per-segment", rows_per_segment).value("centroids", centroids)
    cmd.value("codebook", codebook).value("save-artifacts", save_artifacts)
    if distributed_training:
        training = "distributed"
    cmd.value("training", training).value("seed", seed)
    cmd.flag("keep-segments", keep_segments)
    return _run(cmd, **_common(common))


def create_scalar_index(
    uri: str,
    column: str,
    index_type: str = "BTREE",
    *,
    name: Optional[str] = None,
    replace: bool = True,
    rows_per_segment: Optional[int] = None,
    with_position: bool = False,
    base_tokenizer: Optional[str] = None,
    language: Optional[str] = None,
    lower_case: Optional[bool] = None,
    stem: Optional[bool] = None,
    remove_stop_words: Optional[bool] = None,
    ascii_folding: Optional[bool] = None,
    max_token_length: Optional[int] = None,
    keep_segments: bool = False,
    **common: Any,
) -> Dict[str, Any]:
    """Build a scalar index (BTREE, BITMAP, LABEL_LIST, INVERTED, NGRAM,
    ZONEMAP) as segments on the workers, merged into one (unless
    ``keep_segments``), one commit."""
    cmd = _Command("index", "scalar", uri).value("column", column).value("type", index_type)
    cmd.value("name", name).flag("replace" if replace else "no-replace", True)
    cmd.value("rows-per-segment", rows_per_segment).flag("with-position", with_position)
    cmd.value("base-tokenizer", base_tokenizer).value("language", language)
    cmd.value("lower-case", lower_case).value("stem", stem)
    cmd.value("remove-stop-words", remove_stop_words).value("ascii-folding", ascii_folding)
    cmd.value("max-token-length", max_token_length).flag("keep-segments", keep_segments)
    return _run(cmd, **_common(common))


# -- search ----------------------------------------------------------------


def _at(cmd: _Command, version: Optional[int], tag: Optional[str]) -> _Command:
    return cmd.value("version", version).value("tag", tag)


def vector_search(
    uri: str,
    query: Any = None,
    *,
    query_text: Union[None, str, Sequence[str]] = None,
    query_row: Optional[int] = None,
    k: int = 10,
    column: Optional[str] = None,
    nprobes: Optional[int] = None,
    refine_factor: Optional[int] = None,
    filter: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    metric: Optional[str] = None,
    index: Optional[str] = None,
    distributed: bool = True,
    version: Optional[int] = None,
    tag: Optional[str] = None,
    **common: Any,
) -> pa.Table:
    """Nearest neighbours of one query vector or a batch (a list of vectors,
    a 2-D numpy array), of texts (embedded first) or of a stored row.

    ``distributed=True`` plans tasks by index-segment ownership on the
    executor and merges a global top-k; ``False`` searches in this process.
    Returns one row per hit: ``query`` (position of the query), the requested
    columns and ``_distance``."""
    cmd = _Command("search", "vector", uri)
    if query is not None:
        if hasattr(query, "tolist"):
            query = query.tolist()
        cmd.value("query-vector", json.dumps(query))
    if isinstance(query_text, str):
        query_text = [query_text]
    cmd.repeated("query-text", query_text).value("query-row", query_row).value("k", k)
    cmd.value("column", column).value("nprobes", nprobes).value("refine-factor", refine_factor)
    cmd.value("filter", filter).value("columns", columns).value("metric", metric)
    cmd.value("index", index).flag("distributed", distributed)
    return _hits_table(_run(_at(cmd, version, tag), **_common(common)))


def search_text(
    uri: str,
    query: str,
    *,
    k: int = 10,
    search_columns: Optional[Sequence[str]] = None,
    phrase: bool = False,
    filter: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    version: Optional[int] = None,
    tag: Optional[str] = None,
    **common: Any,
) -> pa.Table:
    """Full-text (BM25) search over the INVERTED-indexed columns."""
    cmd = _Command("search", "text", uri).value("query", query).value("k", k)
    cmd.value("search-columns", search_columns).flag("phrase", phrase)
    cmd.value("filter", filter).value("columns", columns)
    return _hits_table(_run(_at(cmd, version, tag), **_common(common)))


def hybrid_search(
    uri: str,
    query_text: str,
    *,
    query_vector: Any = None,
    k: int = 10,
    vector_k: Optional[int] = None,
    text_k: Optional[int] = None,
    fusion: Optional[str] = None,
    rrf_k: Optional[float] = None,
    weights: Optional[Sequence[float]] = None,
    column: Optional[str] = None,
    search_columns: Optional[Sequence[str]] = None,
    nprobes: Optional[int] = None,
    refine_factor: Optional[int] = None,
    filter: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    version: Optional[int] = None,
    tag: Optional[str] = None,
    **common: Any,
) -> pa.Table:
    """Vector and full-text search fused with Reciprocal Rank Fusion."""
    cmd = _Command("search", "hybrid", uri).value("query-text", query_text)
    if query_vector is not None:
        if hasattr(query_vector, "tolist"):
            query_vector = query_vector.tolist()
        cmd.value("query-vector", json.dumps(query_vector))
    cmd.value("k", k).value("vector-k", vector_k).value("text-k", text_k)
    cmd.value("fusion", fusion).value("rrf-k", rrf_k).repeated("weights", weights)
    cmd.value("column", column).value("search-columns", search_columns)
    cmd.value("nprobes", nprobes).value("refine-factor", refine_factor)
    cmd.value("filter", filter).value("columns", columns)
    return _hits_table(_run(_at(cmd, version, tag), **_common(common)))


# -- maintenance -----------------------------------------------------------


def compact_files(
    uri: str,
    *,
    target_rows_per_fragment: Optional[int] = None,
    max_rows_per_group: Optional[int] = None,
    materialize_deletions: Optional[bool] = None,
    deletion_threshold: Optional[float] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Merge small fragments (one task per run of fragments, one commit;
    indexes are remapped, not rebuilt)."""
    cmd = _Command("compact", uri).value("target-rows-per-fragment", target_rows_per_fragment)
    cmd.value("max-rows-per-group", max_rows_per_group)
    if materialize_deletions is not None:
        cmd.flag("materialize-deletions" if materialize_deletions else "no-materialize-deletions", True)
    cmd.value("deletion-threshold", deletion_threshold)
    return _run(cmd, **_common(common))


def optimize_indices(
    uri: str,
    *,
    indexes: Optional[Sequence[str]] = None,
    merge: Optional[int] = None,
    keep_segments: bool = False,
    retrain: bool = False,
    rows_per_segment: Optional[int] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Index rows appended since the last build with the existing model and
    merge each index's segments into one (``merge=N``: only the N newest;
    ``keep_segments=True``: the new rows get a segment of their own)."""
    cmd = _Command("optimize", uri).repeated("index", indexes).value("merge", merge)
    cmd.flag("keep-segments", keep_segments)
    cmd.flag("retrain", retrain).value("rows-per-segment", rows_per_segment)
    return _run(cmd, **_common(common))


def versions(uri: str, **common: Any) -> List[Dict[str, Any]]:
    """Every version: number, time, operation, rows, fragments, tags."""
    return _run(_Command("versions", uri), **_common(common))


def info(uri: str, *, version: Optional[int] = None, tag: Optional[str] = None, **common: Any) -> Dict[str, Any]:
    """Rows, fragments, schema, indexes, version and size."""
    return _run(_at(_Command("info", uri), version, tag), **_common(common))


def cleanup(uri: str, older_than: str = "7d", *, dry_run: bool = False, **common: Any) -> Dict[str, Any]:
    """Remove versions older than ``older_than`` (tagged versions stay) and
    the files only they use."""
    cmd = _Command("cleanup", uri).value("older-than", older_than).flag("dry-run", dry_run)
    return _run(cmd, **_common(common))
