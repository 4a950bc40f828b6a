"""The Python API: one function per distributed operation.

Each function calls the engine's typed function in ``lanceflow._native``
directly (the same requests, defaults and validation as the command line:
the engine checks every argument), on the local executor or on Ray. Reports
come back as dicts, search results as pyarrow Tables with the dataset's
column types (through the Arrow C data interface), and failures as the
exception class of their engine error kind. No command line is built.
"""

from __future__ import annotations

import numbers
import os
import shutil
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import pyarrow as pa

from . import _native, errors
from .executor import RayExecutor

Executor = Union[None, str, RayExecutor]


def _session(
    executor: Executor = None,
    storage_options: Optional[Mapping[str, str]] = None,
    workers: Optional[int] = None,
    progress: bool = False,
) -> Any:
    """The settings every call shares, checked once by the engine."""
    if executor is None:
        # As the CLI: LANCEFLOW_EXECUTOR=ray makes Ray the default.
        executor = os.environ.get("LANCEFLOW_EXECUTOR") or None
        if executor not in (None, "local", "ray"):
            raise errors.InvalidInputError(
                f"LANCEFLOW_EXECUTOR must be 'local' or 'ray', not {executor!r}"
            )
    if executor == "local":
        executor = None
    elif executor == "ray":
        executor = RayExecutor(num_workers=workers)
    elif executor is not None and not (isinstance(executor, RayExecutor) or hasattr(executor, "run")):
        raise errors.InvalidInputError(
            f"executor must be 'local', 'ray' or a RayExecutor, not {executor!r}"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise errors.InvalidInputError(f"workers must be a whole number, not {workers!r}")
    return _native.Session(executor, dict(storage_options or {}), workers, bool(progress))


def _common(kwargs: Dict[str, Any]) -> Any:
    allowed = {"executor", "storage_options", "workers", "progress"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return _session(**kwargs)


def resolve_table(
    uri: Any = None,
    storage_options: Optional[Mapping[str, str]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Mapping[str, str]] = None,
    table_id: Any = None,
    *,
    write: bool = False,
) -> Tuple[str, Optional[Dict[str, str]]]:
    """``(uri, storage_options)`` of the dataset a call names: ``uri`` as
    given, or ``table_id`` in the Lance namespace ``namespace_impl`` ("dir"
    with ``namespace_properties={"root": ...}``, "rest" with ``{"uri":
    ...}``), its storage options overlaid with those the namespace vends
    (the namespace's win). ``write=True`` declares a table the namespace
    does not have yet."""
    if namespace_impl is None and table_id is None:
        if namespace_properties:
            raise errors.InvalidInputError("namespace_properties needs namespace_impl and table_id")
        if uri is None:
            raise errors.InvalidInputError("Must provide either 'uri' OR ('namespace_impl' + 'table_id').")
        if hasattr(uri, "uri") and not isinstance(uri, (str, os.PathLike)):
            return str(uri.uri), dict(storage_options) if storage_options else None
        return os.fspath(uri), dict(storage_options) if storage_options else None
    if uri is not None:
        raise errors.InvalidInputError(
            "Cannot provide both 'uri' and namespace parameters (namespace_impl, table_id)"
        )
    if namespace_impl is None or table_id is None:
        raise errors.InvalidInputError("Must provide either 'uri' OR ('namespace_impl' + 'table_id').")
    if isinstance(table_id, str):
        table_id = [table_id]
    if not isinstance(table_id, (list, tuple)) or not all(isinstance(p, str) for p in table_id):
        raise errors.InvalidInputError(f"table_id must be a list of names, not {table_id!r}")
    properties = dict(namespace_properties or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in properties.items()):
        raise errors.InvalidInputError("namespace_properties must map names to strings")
    resolver = _native.Session(None, dict(storage_options or {}), None, False)
    return _native.resolve_table(resolver, str(namespace_impl), properties, list(table_id), bool(write))


_NAMESPACE_KEYS = ("namespace_impl", "namespace_properties", "table_id")


def _at(uri: Any, kwargs: Dict[str, Any], write: bool = False) -> Tuple[Any, str]:
    """The session and dataset URI of a call: ``uri``, or ``table_id`` in a
    namespace (``namespace_impl=``, ``namespace_properties=``)."""
    kwargs = dict(kwargs)
    named = {k: kwargs.pop(k) for k in _NAMESPACE_KEYS if k in kwargs}
    uri, options = resolve_table(uri, kwargs.get("storage_options"), write=write, **named)
    if options is not None:
        kwargs["storage_options"] = options
    return _common(kwargs), uri


def _rows(value: Any, name: str, one_row: bool) -> pa.FixedSizeListArray:
    """Rows of numbers (a pyarrow FixedSizeList or FixedShapeTensor array, a
    numpy 2-D array, a list of lists; with ``one_row`` also one vector) as
    a FixedSizeList<float32> array; numpy float32 rows are handed over
    without a copy."""
    import numpy as np

    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.ExtensionArray):
        value = value.storage
    if isinstance(value, pa.FixedSizeListArray):
        if value.type.value_type != pa.float32():
            value = value.cast(pa.list_(pa.float32(), value.type.list_size))
        return value
    try:
        matrix = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise errors.InvalidInputError(f"{name} must be numbers: rows of one dimension ({e})") from None
    if one_row and matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise errors.InvalidInputError(
            f"{name} must be 2-D (rows × dimension), not shape {matrix.shape}"
        )
    matrix = np.ascontiguousarray(matrix)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def _vectors(query: Any) -> Tuple[pa.Array, int]:
    """Query vectors (one vector or rows of them) as a flat float32 Arrow
    array and the dimension."""
    rows = _rows(query, "query", one_row=True)
    return rows.flatten(), rows.type.list_size


def _artifact(value: Any, name: str) -> Any:
    """A pre-trained artifact as the engine takes it: a path as it is, an
    array of rows as a FixedSizeList<float32> array."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    return _rows(value, name, one_row=False)


def _table(batch: pa.RecordBatch) -> pa.Table:
    return pa.Table.from_batches([batch])


# -- ingest ----------------------------------------------------------------


def ingest(
    inputs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    uri: Optional[str] = None,
    *,
    mode: str = "create",
    format: Optional[str] = None,
    max_rows_per_file: Optional[int] = None,
    columns: Optional[Sequence[str]] = None,
    idempotency_key: Optional[str] = None,
    data_storage_version: Optional[str] = None,
    enable_stable_row_ids: bool = False,
    **common: Any,
) -> Dict[str, Any]:
    """Load JSONL, Parquet, CSV or Arrow files into a dataset: one task per
    file (or part of a large JSONL file), one commit. With Ray, the files must
    be readable from every node (a shared filesystem). ``idempotency_key``
    names the job: re-run with the same key after it had committed, it
    writes nothing (``already_applied`` in the report).
    ``data_storage_version`` ("2.0", "2.1", "2.2", "stable", "legacy") and
    ``enable_stable_row_ids`` lay out a new dataset; an append keeps the
    dataset's (asking for another is an error)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    session, uri = _at(uri, common, write=True)
    return _native.ingest(
        session,
        [os.fspath(i) for i in inputs],
        uri,
        mode,
        format,
        max_rows_per_file,
        list(columns) if columns is not None else None,
        idempotency_key,
        data_storage_version=data_storage_version,
        enable_stable_row_ids=bool(enable_stable_row_ids),
    )


def write_lance(
    data: Any,
    uri: Optional[str] = None,
    *,
    mode: str = "create",
    max_rows_per_file: Optional[int] = None,
    staging_dir: Optional[str] = None,
    min_rows_per_file: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    schema: Optional[pa.Schema] = None,
    data_storage_version: Optional[str] = None,
    enable_stable_row_ids: bool = False,
    **common: Any,
) -> Dict[str, Any]:
    """Write a pyarrow Table or RecordBatchReader (anything with
    ``__arrow_c_stream__``), a pandas DataFrame or a Ray Dataset as one new
    dataset version.

    Arrow data in this process streams straight into the engine through the
    Arrow C data interface (fragments written as it streams, one commit).
    A Ray Dataset, whose blocks live on the cluster, is staged as Parquet
    files (written by its blocks in parallel; ``min_rows_per_file`` lets Ray
    gather small blocks) and ingested with one task per file and one commit;
    the staging directory (default: a temporary one, which must be visible
    to every node when the executor is Ray) is removed afterwards.

    ``schema`` selects the data's columns by its names and casts them to its
    types first; ``data_storage_version`` and ``enable_stable_row_ids`` lay
    out a new dataset (see :func:`ingest`)."""
    if schema is not None and not isinstance(schema, pa.Schema):
        raise errors.InvalidInputError(f"schema must be a pyarrow.Schema, not {type(schema).__name__}")
    layout = dict(data_storage_version=data_storage_version, enable_stable_row_ids=bool(enable_stable_row_ids))
    named = {k: common.pop(k) for k in _NAMESPACE_KEYS if k in common}
    uri, options = resolve_table(uri, common.get("storage_options"), write=True, **named)
    if options is not None:
        common["storage_options"] = options
    if not (hasattr(data, "write_parquet") and hasattr(data, "map_batches")):
        if not (isinstance(data, (pa.Table, pa.RecordBatchReader)) or hasattr(data, "__arrow_c_stream__")):
            if isinstance(data, pa.RecordBatch):
                data = pa.Table.from_batches([data])
            else:
                try:
                    data = pa.Table.from_pandas(data, preserve_index=False)
                except (TypeError, AttributeError, pa.ArrowInvalid) as e:
                    raise errors.InvalidInputError(
                        f"write_lance takes a pyarrow Table or RecordBatchReader, a pandas "
                        f"DataFrame or a Ray Dataset, not {type(data).__name__} ({e})"
                    ) from None
        return _native.write_arrow(
            _common(common), data, uri, mode, max_rows_per_file, idempotency_key, schema=schema, **layout
        )
    if schema is not None:
        missing = [n for n in schema.names if n not in data.schema().names]
        if missing:
            raise errors.InvalidInputError(
                f"the given schema names column(s) {missing} the data does not have; "
                f"the data has: {data.schema().names}"
            )
        data = data.map_batches(
            lambda block: block.select(schema.names).cast(schema), batch_format="pyarrow"
        )
    owned = staging_dir is None
    stage = staging_dir or tempfile.mkdtemp(prefix="lanceflow-stage-")
    try:
        if min_rows_per_file is not None:
            data.write_parquet(stage, min_rows_per_file=int(min_rows_per_file))
        else:
            data.write_parquet(stage)
        files = sorted(
            os.path.join(stage, f) for f in os.listdir(stage) if f.endswith(".parquet")
        )
        if not files:
            raise errors.InvalidInputError("write_lance: the data holds no rows")
        return ingest(
            files,
            uri,
            mode=mode,
            format="parquet",
            max_rows_per_file=max_rows_per_file,
            idempotency_key=idempotency_key,
            **layout,
            **common,
        )
    finally:
        if owned:
            shutil.rmtree(stage, ignore_errors=True)


def _fragment_ids(ids: Optional[Sequence[int]]) -> Optional[List[int]]:
    """Fragment ids as whole numbers from 0 to 2³²−1."""
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise errors.InvalidInputError(f"fragment_ids must be a list of fragment ids, not {ids!r}")
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= int(i) < 2**32:
            raise errors.InvalidInputError(
                f"fragment_ids holds {i!r}; fragment ids are whole numbers from 0 (see info())"
            )
        out.append(int(i))
    return out


def read_lance(
    uri: Optional[str] = None,
    *,
    columns: Optional[Sequence[str]] = None,
    filter: Optional[str] = None,
    version: Optional[int] = None,
    tag: Optional[str] = None,
    fragments_per_task: Optional[int] = None,
    fragment_ids: Optional[Sequence[int]] = None,
    with_metadata: bool = False,
    storage_options: Optional[Mapping[str, str]] = None,
    ray_remote_args: Optional[Mapping[str, Any]] = None,
    concurrency: Optional[int] = None,
    override_num_blocks: Optional[int] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Mapping[str, str]] = None,
    table_id: Any = None,
) -> Any:
    """A Ray Dataset over one pinned version of a dataset (``uri``, or
    ``table_id`` in the namespace ``namespace_impl``).

    ``fragment_ids`` reads only those fragments (in dataset order; an id the
    version lacks is an error); ``with_metadata=True`` adds each row's
    address ``_rowaddr`` and fragment id ``_fragid`` (both uint64) after the
    columns, for joining results back to their rows.

    The driver pins the version (latest, ``version`` or ``tag``), checks the
    columns and the filter, and plans one read task per fragment (or per
    ``fragments_per_task`` fragments); each scans only its fragments with
    the projection and the filter pushed down into the scan (in Rust), so a
    later commit to the dataset does not change what the Dataset holds.
    The read tasks run as one Ray task per CPU of the cluster, each yielding
    one block per read task as it goes: few Ray tasks (each has a fixed
    cost of tens of milliseconds), one fragment group in memory at a time.
    ``override_num_blocks`` sets the number of Ray tasks instead (at most
    one per read task), ``concurrency`` caps how many run at once.
    """
    import math

    import ray

    uri, storage_options = resolve_table(uri, storage_options, namespace_impl, namespace_properties, table_id)
    tasks = _native.plan_read(
        _session(storage_options=storage_options),
        uri,
        version,
        tag,
        list(columns) if columns is not None else None,
        filter,
        1 if fragments_per_task is None else fragments_per_task,
        fragment_ids=_fragment_ids(fragment_ids),
        with_metadata=bool(with_metadata),
    )
    if not tasks:
        raise errors.InvalidInputError(f"{uri} has no fragments to read")

    def read(batch: pa.Table) -> Any:
        from lanceflow import _native as native

        for task in batch.column("task").to_pylist():
            yield native.read_task(task)

    for name, value in (("concurrency", concurrency), ("override_num_blocks", override_num_blocks)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise errors.InvalidInputError(f"{name} must be a whole number ≥ 1, not {value!r}")
    if override_num_blocks is not None:
        blocks = min(len(tasks), int(override_num_blocks))
    else:
        cpus = float(ray.cluster_resources().get("CPU", 1.0)) if ray.is_initialized() else 1.0
        blocks = max(1, min(len(tasks), int(cpus)))
    items = ray.data.from_items([{"task": t} for t in tasks], override_num_blocks=blocks)
    extra = dict(ray_remote_args or {})
    if concurrency is not None:
        extra["concurrency"] = int(concurrency)
    return items.map_batches(
        read,
        batch_size=math.ceil(len(tasks) / blocks),
        batch_format="pyarrow",
        **extra,
    )


# -- embeddings ------------------------------------------------------------


def embed(
    uri: Optional[str] = None,
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
    return _native.embed(
        *_at(uri, common), column, to_column, template, max_chars, bool(replace), to,
        rows_per_task, model, backend, onnx, threads, batch_size,
    )


# -- indexes ---------------------------------------------------------------


def create_index(
    uri: Optional[str] = None,
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
    centroids: Any = None,
    codebook: Any = None,
    save_artifacts: Optional[str] = None,
    training: Optional[str] = None,
    distributed_training: bool = False,
    seed: Optional[int] = None,
    keep_segments: bool = False,
    rabitq_model: Optional[str] = None,
    hnsw_m: Optional[int] = None,
    hnsw_ef_construction: Optional[int] = None,
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
    ``keep_segments``: kept segments are what a distributed search spreads over.
    ``centroids`` / ``codebook``: pre-trained artifacts, a ``.npy`` path or
    an array of rows (pyarrow FixedSizeList, numpy 2-D), used as given.
    ``rabitq_model`` (IVF_RQ): the JSON pylance's ``build_rq_model`` gives
    (default: one random rotation minted for the build, shared by every
    segment). ``num_bits``: 8 per PQ code or SQ value (4 for PQ too), 1 to 9
    per dimension for IVF_RQ (default 5)."""
    if distributed_training:
        training = "distributed"
    return _native.create_vector_index(
        *_at(uri, common),
        column,
        index_type,
        metric or "l2",
        num_partitions,
        num_sub_vectors,
        num_bits,
        sample_rate,
        max_iters,
        name,
        bool(replace),
        rows_per_segment,
        _artifact(centroids, "centroids"),
        _artifact(codebook, "codebook"),
        save_artifacts,
        hnsw_m,
        hnsw_ef_construction,
        training or "auto",
        42 if seed is None else seed,
        bool(keep_segments),
        rabitq_model=rabitq_model,
    )


def create_scalar_index(
    uri: Optional[str],
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
    fragments: Optional[Sequence[int]] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Build a scalar index (BTREE, BITMAP, LABEL_LIST, INVERTED, NGRAM,
    ZONEMAP) as segments on the workers, merged into one (unless
    ``keep_segments``), one commit; ``fragments`` indexes only those."""
    return _native.create_scalar_index(
        *_at(uri, common),
        column,
        index_type,
        name,
        bool(replace),
        _fragment_ids(fragments),
        rows_per_segment,
        bool(keep_segments),
        bool(with_position),
        base_tokenizer,
        language,
        lower_case,
        stem,
        remove_stop_words,
        ascii_folding,
        max_token_length,
    )


# -- search ----------------------------------------------------------------


def vector_search(
    uri: Optional[str] = None,
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
    fast_search: bool = False,
    minimum_nprobes: Optional[int] = None,
    maximum_nprobes: Optional[int] = None,
    distance_range: Optional[Tuple[Optional[float], Optional[float]]] = None,
    analyze_plan: bool = False,
    **common: Any,
) -> Union[pa.Table, str]:
    """Nearest neighbours of one query vector or a batch (a list of vectors,
    a 2-D numpy array), of texts (embedded first) or of a stored row.

    ``distributed=True`` plans tasks by index-segment ownership on the
    executor and merges a global top-k; ``False`` searches in this process.
    ``fast_search=True`` searches the indexed rows only (rows added since
    the index was built or optimised are left out).
    ``minimum_nprobes`` / ``maximum_nprobes`` bound lance's adaptive
    probing (each overrides ``nprobes`` on its side); ``distance_range=(lower,
    upper)`` keeps hits with ``lower <= _distance < upper`` (either may be
    ``None``).
    Returns one row per hit: ``query`` (position of the query), the requested
    columns and ``_distance``. With ``analyze_plan=True`` it returns lance's
    plan of the first query with its metrics instead, as text: one section
    in-process, one per task when distributed."""
    values, dim = _vectors(query) if query is not None else (None, 0)
    if isinstance(query_text, str):
        query_text = [query_text]
    for name, value in (("nprobes", nprobes), ("minimum_nprobes", minimum_nprobes),
                        ("maximum_nprobes", maximum_nprobes), ("k", k)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                  or value < 1):
            raise errors.InvalidInputError(f"{name} must be a whole number of at least 1, not {value!r}")
    if distance_range is not None:
        if not isinstance(distance_range, (tuple, list)) or len(distance_range) != 2:
            raise errors.InvalidInputError(
                "distance_range must be a pair (lower, upper); either may be None"
            )
        try:
            distance_range = tuple(None if b is None else float(b) for b in distance_range)
        except (TypeError, ValueError):
            raise errors.InvalidInputError(
                f"distance_range bounds must be numbers or None, not {distance_range!r}"
            ) from None
    answer = _native.vector_search(
        *_at(uri, common),
        values,
        dim,
        list(query_text) if query_text is not None else None,
        query_row,
        k,
        column,
        nprobes,
        refine_factor,
        filter,
        list(columns) if columns is not None else None,
        metric,
        index,
        bool(distributed),
        version,
        tag,
        None,
        None,
        bool(fast_search),
        minimum_nprobes=minimum_nprobes,
        maximum_nprobes=maximum_nprobes,
        distance_range=distance_range,
        analyze_plan=bool(analyze_plan),
    )
    if isinstance(answer, str):
        return answer
    return _table(answer)


def search_text(
    uri: Optional[str],
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
    batch = _native.search_text(
        *_at(uri, common),
        query,
        k,
        list(search_columns) if search_columns is not None else None,
        bool(phrase),
        filter,
        list(columns) if columns is not None else None,
        version,
        tag,
    )
    return _table(batch)


def hybrid_search(
    uri: Optional[str],
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
    values, dim = _vectors(query_vector) if query_vector is not None else (None, 0)
    batch = _native.hybrid_search(
        *_at(uri, common),
        query_text,
        values,
        dim,
        k,
        vector_k,
        text_k,
        fusion,
        rrf_k,
        list(weights) if weights is not None else None,
        column,
        list(search_columns) if search_columns is not None else None,
        nprobes,
        refine_factor,
        filter,
        list(columns) if columns is not None else None,
        version,
        tag,
    )
    return _table(batch)


# -- maintenance -----------------------------------------------------------


def compact_files(
    uri: Optional[str] = None,
    *,
    target_rows_per_fragment: Optional[int] = None,
    max_rows_per_group: Optional[int] = None,
    materialize_deletions: Optional[bool] = None,
    deletion_threshold: Optional[float] = None,
    **common: Any,
) -> Dict[str, Any]:
    """Merge small fragments (one task per run of fragments, one commit;
    indexes are remapped, not rebuilt)."""
    return _native.compact(
        *_at(uri, common),
        target_rows_per_fragment,
        max_rows_per_group,
        materialize_deletions,
        deletion_threshold,
    )


def optimize_indices(
    uri: Optional[str] = None,
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
    return _native.optimize(
        *_at(uri, common),
        list(indexes) if indexes is not None else None,
        merge,
        bool(keep_segments),
        bool(retrain),
        rows_per_segment,
    )


# -- data evolution ----------------------------------------------------------


def _record_batch(out: Any) -> pa.RecordBatch:
    """A transform's result as one RecordBatch (a Table, a dict of columns
    or a pandas DataFrame converted)."""
    if isinstance(out, pa.RecordBatch):
        return out
    if isinstance(out, pa.Table):
        arrays = [pa.concat_arrays(c.chunks) if c.num_chunks else pa.array([], c.type) for c in out.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=out.schema)
    if isinstance(out, dict):
        return pa.RecordBatch.from_pydict(out)
    if hasattr(out, "columns") and hasattr(out, "to_dict"):
        return pa.RecordBatch.from_pandas(out, preserve_index=False)
    raise TypeError(
        "the transform must return a pyarrow.RecordBatch, a pyarrow.Table, a dict of "
        f"columns or a pandas DataFrame, not {type(out).__name__}"
    )


class _BatchTransform:
    """A user's transform as the engine's tasks run it: a pyarrow
    RecordBatch in (or, with ``as_dict``, a dict of Python lists without
    the row-address columns), the new columns out as one RecordBatch."""

    def __init__(self, function: Any, as_dict: bool = False) -> None:
        self.function = function
        self.as_dict = as_dict

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.as_dict:
            keep = [n for n in batch.schema.names if n not in ("_rowaddr", "_fragid", "_rowid")]
            return _record_batch(self.function(batch.select(keep).to_pydict()))
        return _record_batch(self.function(batch))


def _payload(transform: Any) -> str:
    """A callable as the engine's transform host loads it (base64 pickle)."""
    import base64

    try:
        import cloudpickle as pickler
    except ImportError:  # pragma: no cover - Ray brings cloudpickle
        import pickle as pickler
    try:
        data = pickler.dumps(transform)
    except Exception as e:  # noqa: BLE001 - any pickling failure is the user's to fix
        raise errors.InvalidInputError(
            f"the transform cannot be pickled to run on the workers: {e}"
        ) from None
    return base64.b64encode(data).decode("ascii")


def _batch_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise errors.InvalidInputError(f"batch_size must be a whole number ≥ 1, not {value!r}")
    return int(value)


def add_columns(
    uri: Optional[str],
    transform: Any,
    *,
    read_columns: Optional[Sequence[str]] = None,
    output_schema: Optional[pa.Schema] = None,
    version: Optional[int] = None,
    batch_size: int = 1024,
    rows_per_task: Optional[int] = None,
    as_dict: bool = False,
    **common: Any,
) -> Dict[str, Any]:
    """Add columns to every row, fragment by fragment, without rewriting
    the existing data; one new version.

    ``transform`` is either a dict ``{new column: SQL expression}`` (e.g.
    ``{"n_chars": "length(text)"}``) or a callable taking a pyarrow
    RecordBatch of ``read_columns`` (default: all) and returning the new
    columns for those rows (a RecordBatch, Table, dict of columns or pandas
    DataFrame; with ``as_dict=True`` it takes a dict of Python lists). The
    callable runs on the workers (threads here, Ray actors with a Ray
    executor): it is pickled with cloudpickle. Its output schema is learnt
    from a few rows first (``output_schema`` fixes it), so a transform that
    raises or returns the wrong number of rows fails before any work, and
    nothing is committed if it fails later.
    """
    session, uri = _at(uri, common)
    size = _batch_size(batch_size)
    if output_schema is not None and not isinstance(output_schema, pa.Schema):
        raise errors.InvalidInputError(
            f"output_schema must be a pyarrow.Schema, not {type(output_schema).__name__}"
        )
    reads = list(read_columns) if read_columns is not None else None
    if isinstance(transform, Mapping):
        pairs = list(transform.items())
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
            raise errors.InvalidInputError(
                "a dict transform maps new column names to SQL expressions (both strings)"
            )
        if reads is not None or output_schema is not None or as_dict:
            raise errors.InvalidInputError(
                "read_columns, output_schema and as_dict apply to a callable transform, not to "
                "SQL expressions"
            )
        return _native.add_columns(session, uri, sql=pairs, version=version, batch_size=size,
                                   rows_per_task=rows_per_task)
    if not callable(transform):
        raise errors.InvalidInputError(
            "transform must be a dict of SQL expressions or a callable over pyarrow "
            f"RecordBatches, not {type(transform).__name__}"
        )
    if output_schema is None and isinstance(getattr(transform, "output_schema", None), pa.Schema):
        output_schema = transform.output_schema  # pylance's BatchUDF
    return _native.add_columns(
        session,
        uri,
        transform=_payload(_BatchTransform(transform, as_dict=bool(as_dict))),
        read_columns=reads,
        output_schema=output_schema,
        version=version,
        batch_size=size,
        rows_per_task=rows_per_task,
    )


def _arrow_stream(data: Any, what: str) -> Any:
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, (pa.Table, pa.RecordBatchReader)) or hasattr(data, "__arrow_c_stream__"):
        return data
    raise errors.InvalidInputError(
        f"{what} takes a pyarrow Table, RecordBatch or RecordBatchReader, not {type(data).__name__}"
    )


def merge_columns(
    uri: Optional[str],
    data: Any,
    *,
    version: Optional[int] = None,
    allow_missing: bool = False,
    **common: Any,
) -> Dict[str, Any]:
    """Add the columns of ``data`` (rows carrying ``_rowaddr``, as
    :func:`read_lance` ``with_metadata=True`` gives them, in any order) to
    the rows they address; one new version. Each fragment's rows must all be
    given; with ``allow_missing`` fragments without any read null."""
    return _native.merge_columns(
        *_at(uri, common), _arrow_stream(data, "merge_columns"), version, bool(allow_missing)
    )


def versions(uri: Optional[str] = None, **common: Any) -> List[Dict[str, Any]]:
    """Every version: number, time, operation, rows, fragments, tags."""
    return _native.versions(*_at(uri, common))


def info(uri: Optional[str] = None, *, version: Optional[int] = None, tag: Optional[str] = None, **common: Any) -> Dict[str, Any]:
    """Rows, fragments, schema, indexes, version and size."""
    return _native.info(*_at(uri, common), version, tag)


def cleanup(uri: Optional[str] = None, older_than: str = "7d", *, dry_run: bool = False, **common: Any) -> Dict[str, Any]:
    """Remove versions older than ``older_than`` (tagged versions stay) and
    the files only they use."""
    return _native.cleanup(*_at(uri, common), older_than, bool(dry_run))
