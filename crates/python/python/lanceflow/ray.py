"""lance-ray's API on lanceflow's engine: ``import lanceflow.ray as lr``.

The functions take lance-ray 0.5's names, parameters and defaults and return
what it returns (``lance.LanceDataset`` after index builds and
``optimize_indices``, compaction metrics or ``None`` after ``compact_files``,
a ``pyarrow.Table`` sorted by ``_distance`` from ``vector_search``, a Ray
Dataset from ``read_lance``). Everything runs as lanceflow's Rust tasks on Ray
(by default, as lance-ray does): ``num_workers`` and ``ray_remote_args`` size
a :class:`~lanceflow.RayExecutor` per call, unless a global pool is set, which
then serves every call with its warm actors. Nothing imports lance-ray.

Tables can be named by ``namespace_impl`` / ``namespace_properties`` /
``table_id`` (Lance namespaces, ``dir`` and ``rest``) everywhere lance-ray
takes them; the namespace is resolved once on the driver, its storage options
winning over the caller's, and the tasks carry the resolved location.

A parameter whose capability the engine does not have yet (``block_size``,
...) raises
``NotImplementedError`` naming it; none is silently ignored.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import pyarrow as pa

from . import api, errors
from .executor import RayExecutor

__all__ = [
    "clear_global_pool",
    "compact_files",
    "create_index",
    "create_scalar_index",
    "get_global_pool",
    "init_global_pool",
    "optimize_indices",
    "read_lance",
    "set_global_pool",
    "vector_search",
    "write_lance",
    "add_columns",
    "add_columns_from",
    "merge_columns_from",
    "compact_database",
    "LanceFragmentWriter",
    "LanceFragmentCommitter",
]

# -- the global pool ---------------------------------------------------------

_POOL_LOCK = threading.RLock()
_POOL: Optional[RayExecutor] = None


def init_global_pool(processes: int, ray_remote_args: Optional[Dict[str, Any]] = None) -> RayExecutor:
    """One warm pool of Ray actors for every later call (until cleared).
    Returns the existing pool if there is one (warning when its size differs)."""
    global _POOL
    if isinstance(processes, bool) or int(processes) <= 0:
        raise errors.InvalidInputError(f"processes must be positive, not {processes!r}")
    with _POOL_LOCK:
        if _POOL is not None:
            if _POOL.num_workers != int(processes):
                warnings.warn(
                    f"the global pool already has {_POOL.num_workers} workers; "
                    f"{processes} requested (clear_global_pool() first to resize)",
                    stacklevel=2,
                )
            return _POOL
        _POOL = RayExecutor(num_workers=int(processes), ray_remote_args=ray_remote_args)
        return _POOL


def set_global_pool(pool: Optional[RayExecutor]) -> None:
    """Use ``pool`` (a :class:`lanceflow.RayExecutor`) for every later call;
    ``None`` forgets the current one without shutting it down."""
    global _POOL
    if pool is not None and not isinstance(pool, RayExecutor):
        raise NotImplementedError(
            "set_global_pool: lanceflow runs its tasks on its own actors; pass a "
            "lanceflow.RayExecutor (or call init_global_pool(processes)), not "
            f"{type(pool).__name__}"
        )
    with _POOL_LOCK:
        _POOL = pool


def get_global_pool() -> Optional[RayExecutor]:
    """The global pool, or ``None``."""
    with _POOL_LOCK:
        return _POOL


def clear_global_pool(*, close: bool = False, join: bool = True) -> None:
    """Forget the global pool; ``close=True`` also stops its actors."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and close:
        pool.shutdown()


class _Executor:
    """The executor of one call: the global pool, or a pool of
    ``num_workers`` actors made for this call and stopped after it."""

    def __init__(self, num_workers: int, ray_remote_args: Optional[Dict[str, Any]]) -> None:
        if isinstance(num_workers, bool) or int(num_workers) <= 0:
            raise errors.InvalidInputError(f"num_workers must be positive, not {num_workers!r}")
        self.pool = get_global_pool()
        self.owned = self.pool is None
        if self.owned:
            self.pool = RayExecutor(num_workers=int(num_workers), ray_remote_args=ray_remote_args)

    def __enter__(self) -> RayExecutor:
        return self.pool

    def __exit__(self, *exc: Any) -> None:
        if self.owned:
            self.pool.shutdown()


# -- argument checks -----------------------------------------------------------


def _not_yet(**given: Any) -> None:
    """Raise NotImplementedError naming every parameter given a value the
    engine cannot honour yet (``None``, ``False`` and empty mean not given)."""
    used = [name for name, value in given.items() if value not in (None, False, {}, [], ())]
    if used:
        raise NotImplementedError(
            f"lanceflow.ray does not support {', '.join(used)} yet; leave "
            f"{'it' if len(used) == 1 else 'them'} unset"
        )


def _uri(uri: Any, namespace_impl: Any, namespace_properties: Any, table_id: Any,
         storage_options: Any, write: bool = False) -> Tuple[str, Optional[Dict[str, str]]]:
    """The dataset URI and storage options: ``uri`` (a ``lance.LanceDataset``
    gives its own), or ``table_id`` in the namespace, whose storage options
    win over the caller's (credential vending). ``write`` declares a table
    the namespace does not have yet."""
    return api.resolve_table(uri, storage_options, namespace_impl, namespace_properties, table_id, write=write)


def _no_unknown(what: str, extra: Dict[str, Any], known: Dict[str, str]) -> Dict[str, Any]:
    """Map lance-ray's extra keyword arguments onto ours; any other one
    raises NotImplementedError."""
    unknown = sorted(set(extra) - set(known))
    if unknown:
        raise NotImplementedError(f"{what}: lanceflow.ray does not support {', '.join(unknown)} yet")
    return {known[k]: v for k, v in extra.items()}


def _dataset(uri: str, storage_options: Optional[Dict[str, str]]) -> Any:
    import lance

    return lance.dataset(uri, storage_options=storage_options or None)


# -- indexes -------------------------------------------------------------------

_VECTOR_TYPES = {"IVF_FLAT", "IVF_SQ", "IVF_PQ", "IVF_RQ", "IVF_HNSW_FLAT", "IVF_HNSW_SQ", "IVF_HNSW_PQ"}
_SCALAR_TYPES = {"BTREE", "BITMAP", "LABEL_LIST", "INVERTED", "FTS", "NGRAM", "ZONEMAP", "BLOOMFILTER", "RTREE"}
_FTS_PARAMS = {
    name: name
    for name in (
        "with_position",
        "base_tokenizer",
        "language",
        "lower_case",
        "stem",
        "remove_stop_words",
        "ascii_folding",
        "max_token_length",
    )
}


def _segments(uri: str, storage_options: Any, num_segments: Optional[int]) -> Dict[str, Any]:
    """``num_segments`` → the engine's rows per segment, segments kept."""
    if num_segments is None:
        return {}
    if isinstance(num_segments, bool) or int(num_segments) <= 0:
        raise errors.InvalidInputError(f"num_segments must be positive, not {num_segments!r}")
    rows = _dataset(uri, storage_options).count_rows()
    return {"rows_per_segment": max(1, math.ceil(rows / int(num_segments))), "keep_segments": True}


def create_index(
    uri: Any = None,
    column: str = "",
    index_type: Any = "",
    name: Optional[str] = None,
    *,
    replace: bool = True,
    num_workers: int = 4,
    num_segments: Optional[int] = None,
    storage_options: Optional[Dict[str, str]] = None,
    block_size: Optional[int] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    table_id: Optional[List[str]] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    metric: str = "l2",
    num_partitions: Optional[int] = None,
    num_sub_vectors: Optional[int] = None,
    sample_rate: int = 256,
    ivf_centroids: Any = None,
    pq_codebook: Any = None,
    rabitq_model: Optional[str] = None,
    **kwargs: Any,
) -> Any:
    """A distributed vector index (trained once, one segment per batch of
    fragments on the workers, one commit); the dataset as committed."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    if not column:
        raise errors.InvalidInputError("Column name cannot be empty")
    kind = str(getattr(index_type, "value", index_type)).upper()
    if kind not in _VECTOR_TYPES:
        raise errors.InvalidInputError(
            f"index_type must be one of {sorted(_VECTOR_TYPES)}, not {index_type!r}"
        )
    _not_yet(block_size=block_size)
    extra = _no_unknown(
        "create_index", kwargs, {"num_bits": "num_bits", "max_iters": "max_iters", "m": "hnsw_m",
                                 "ef_construction": "hnsw_ef_construction"}
    )
    if rabitq_model is not None:
        extra["rabitq_model"] = rabitq_model
    if isinstance(sample_rate, bool) or int(sample_rate) <= 0:
        raise errors.InvalidInputError(f"sample_rate must be positive, not {sample_rate!r}")
    # Arrow or numpy arrays go to the engine as they are (Arrow C data
    # interface); a path to a .npy file works too.
    if ivf_centroids is not None:
        extra["centroids"] = ivf_centroids
    if pq_codebook is not None:
        extra["codebook"] = pq_codebook
    extra.update(_segments(uri, storage_options, num_segments))
    with _Executor(num_workers, ray_remote_args) as executor:
        api.create_index(
            uri,
            column,
            kind,
            metric=str(metric).lower(),
            num_partitions=num_partitions,
            num_sub_vectors=num_sub_vectors,
            sample_rate=int(sample_rate),
            name=name,
            replace=replace,
            executor=executor,
            storage_options=storage_options,
            **extra,
        )
    return _dataset(uri, storage_options)


def create_scalar_index(
    uri: Any = None,
    *,
    column: str,
    index_type: Any,
    table_id: Optional[List[str]] = None,
    name: Optional[str] = None,
    replace: bool = True,
    train: bool = True,
    fragment_ids: Optional[List[int]] = None,
    index_uuid: Optional[str] = None,
    num_workers: int = 4,
    num_segments: Optional[int] = None,
    storage_options: Optional[Dict[str, str]] = None,
    block_size: Optional[int] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    **kwargs: Any,
) -> Any:
    """A distributed scalar index (one segment per batch of fragments, one
    commit); the dataset as committed. The default name is ``{column}_idx``."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    if not column:
        raise errors.InvalidInputError("Column name cannot be empty")
    if not isinstance(index_type, str):
        raise NotImplementedError("index_type: lanceflow.ray takes the index type's name, not an IndexConfig")
    kind = index_type.upper()
    if kind not in _SCALAR_TYPES:
        raise errors.InvalidInputError(
            f"Index type must be one of {sorted(_SCALAR_TYPES)}, not '{index_type}'"
        )
    _not_yet(
        train=not train,
        index_uuid=index_uuid,
        block_size=block_size,
    )
    extra = _no_unknown("create_scalar_index", kwargs, _FTS_PARAMS)
    extra.update(_segments(uri, storage_options, num_segments))
    if fragment_ids:
        extra["fragments"] = list(fragment_ids)
    with _Executor(num_workers, ray_remote_args) as executor:
        api.create_scalar_index(
            uri,
            column,
            "INVERTED" if kind == "FTS" else kind,
            name=name or f"{column}_idx",
            replace=replace,
            executor=executor,
            storage_options=storage_options,
            **extra,
        )
    return _dataset(uri, storage_options)


def optimize_indices(
    uri: Optional[str] = None,
    *,
    table_id: Optional[List[str]] = None,
    indices: Optional[List[str]] = None,
    num_indices_to_merge: int = 1,
    retrain: bool = False,
    storage_options: Optional[Dict[str, str]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    **kwargs: Any,
) -> Any:
    """Index the rows added since the indexes were built (with their
    trained models) and merge the ``num_indices_to_merge`` newest segments;
    the dataset as committed."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    _no_unknown("optimize_indices", kwargs, {})
    if isinstance(num_indices_to_merge, bool) or int(num_indices_to_merge) < 0:
        raise errors.InvalidInputError(
            f"num_indices_to_merge must be at least 0, not {num_indices_to_merge!r}"
        )
    with _Executor(1, None) as executor:
        api.optimize_indices(
            uri,
            indexes=indices,
            merge=int(num_indices_to_merge) or None,
            keep_segments=int(num_indices_to_merge) == 0,
            retrain=retrain,
            executor=executor,
            storage_options=storage_options,
        )
    return _dataset(uri, storage_options)


# -- compaction ------------------------------------------------------------------


@dataclass(frozen=True)
class CompactionMetrics:
    """What a compaction did (the fields of pylance's ``CompactionMetrics``)."""

    fragments_removed: int
    fragments_added: int
    files_removed: int
    files_added: int


_COMPACTION_OPTIONS = {
    "target_rows_per_fragment": "target_rows_per_fragment",
    "max_rows_per_group": "max_rows_per_group",
    "materialize_deletions": "materialize_deletions",
    "materialize_deletions_threshold": "deletion_threshold",
}


def compact_files(
    uri: Optional[str] = None,
    *,
    table_id: Optional[List[str]] = None,
    compaction_options: Optional[Dict[str, Any]] = None,
    num_workers: int = 4,
    storage_options: Optional[Dict[str, str]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
) -> Optional[CompactionMetrics]:
    """Merge small fragments (one task per group, one commit); ``None`` when
    there was nothing to compact."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    options = dict(compaction_options or {})
    # Threads per task are the engine's own choice (one task per worker).
    options.pop("num_threads", None)
    mapped = _no_unknown("compaction_options", options, _COMPACTION_OPTIONS)
    with _Executor(num_workers, ray_remote_args) as executor:
        report = api.compact_files(uri, executor=executor, storage_options=storage_options, **mapped)
    return _compaction_metrics(report)


def compact_database(
    *,
    database: List[str],
    namespace_impl: str,
    namespace_properties: Optional[Dict[str, str]] = None,
    compaction_options: Optional[Dict[str, Any]] = None,
    num_workers: int = 4,
    storage_options: Optional[Dict[str, str]] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """Compact every table the namespace lists under ``database`` (one level),
    one after another, each distributed and committed once; one
    ``{"table_id": [...], "metrics": CompactionMetrics | None}`` per table
    (``None``: nothing to compact). The first table that fails raises,
    naming it; the tables before it stay compacted."""
    if not database:
        raise errors.InvalidInputError("database must be a non-empty list of namespace names")
    if not namespace_impl:
        raise errors.InvalidInputError("namespace_impl is required (e.g. \"dir\" or \"rest\")")
    if isinstance(database, str) or not all(isinstance(p, str) for p in database):
        raise errors.InvalidInputError(f"database must be a list of names, not {database!r}")
    options = dict(compaction_options or {})
    options.pop("num_threads", None)
    mapped = _no_unknown("compaction_options", options, _COMPACTION_OPTIONS)
    properties = dict(namespace_properties or {})
    with _Executor(num_workers, ray_remote_args) as executor:
        from . import _native

        report = _native.compact_database(
            api._session(executor=executor, storage_options=storage_options),
            str(namespace_impl),
            properties,
            list(database),
            mapped.get("target_rows_per_fragment"),
            mapped.get("max_rows_per_group"),
            mapped.get("materialize_deletions"),
            mapped.get("deletion_threshold"),
        )
    return [
        {"table_id": list(t["table_id"]), "metrics": _compaction_metrics(t["report"])}
        for t in report["tables"]
    ]


def _compaction_metrics(report: Dict[str, Any]) -> Optional[CompactionMetrics]:
    if not report.get("compacted"):
        return None
    removed, added = report["fragments_removed"], report["fragments_added"]
    # One data file per fragment in the engine's rewrite.
    return CompactionMetrics(removed, added, removed, added)


# -- search ------------------------------------------------------------------------

_NEAREST_KEYS = {
    "column",
    "q",
    "k",
    "metric",
    "distance_type",
    "nprobes",
    "minimum_nprobes",
    "maximum_nprobes",
    "refine_factor",
    "distance_range",
}


def vector_search(
    uri: Any = None,
    *,
    nearest: Dict[str, Any],
    index_name: Optional[str] = None,
    columns: Optional[List[str]] = None,
    filter: Optional[str] = None,
    storage_options: Optional[Dict[str, Any]] = None,
    block_size: Optional[int] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    table_id: Optional[List[str]] = None,
    num_workers: int = 4,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    oversample_factor: float = 1.0,
    include_unindexed: bool = True,
    fast_search: bool = False,
    analyze_plan: bool = False,
    scanner_options: Optional[Dict[str, Any]] = None,
) -> Union[pa.Table, str]:
    """The global top k of ``nearest["q"]`` over the dataset, searched by
    index-segment ownership on the workers: a table sorted by ``_distance``
    (with ``analyze_plan=True``: lance's plan of each task with its metrics,
    as text).

    ``oversample_factor`` (at least 1) is accepted for lance-ray's signature
    and changes nothing here: lance-ray's shards each refine and cut their own
    top ``k × oversample_factor``, so more per shard means better recall;
    lanceflow's segment tasks return their approximate candidates and the
    driver selects and refines the global ``k × refine_factor`` of all of
    them, which gives exactly the single-process answer already."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    if not isinstance(nearest, dict):
        raise errors.InvalidInputError("nearest must be a dict with 'column', 'q' and 'k'")
    unknown = sorted(set(nearest) - _NEAREST_KEYS)
    if unknown:
        raise NotImplementedError(f"nearest: lanceflow.ray does not support {', '.join(unknown)} yet")
    column = nearest.get("column")
    if not column:
        raise errors.InvalidInputError("nearest['column'] is required")
    k = nearest.get("k")
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise errors.InvalidInputError(f"nearest['k'] must be a positive integer, not {k!r}")
    if nearest.get("q") is None:
        raise errors.InvalidInputError("nearest['q'] (the query vector) is required")
    try:
        oversample = float(oversample_factor)
    except (TypeError, ValueError):
        oversample = float("nan")
    if not oversample >= 1.0 or math.isinf(oversample):
        raise errors.InvalidInputError(
            f"oversample_factor must be a number of at least 1, not {oversample_factor!r}"
        )
    _not_yet(block_size=block_size, scanner_options=scanner_options)
    if isinstance(columns, dict):
        raise NotImplementedError("columns: lanceflow.ray takes a list of column names, not a projection dict")
    query = nearest["q"]
    if hasattr(query, "tolist"):
        query = query.tolist()
    metric = nearest.get("metric") or nearest.get("distance_type")
    with _Executor(num_workers, ray_remote_args) as executor:
        table = api.vector_search(
            uri,
            [float(x) for x in query],
            k=k,
            column=column,
            nprobes=nearest.get("nprobes"),
            minimum_nprobes=nearest.get("minimum_nprobes"),
            maximum_nprobes=nearest.get("maximum_nprobes"),
            distance_range=nearest.get("distance_range"),
            refine_factor=nearest.get("refine_factor"),
            filter=filter,
            columns=columns,
            metric=metric.lower() if isinstance(metric, str) else None,
            index=index_name,
            distributed=True,
            # lance's fast_search and lance-ray's include_unindexed=False
            # both leave out the rows no index covers yet.
            fast_search=bool(fast_search) or not include_unindexed,
            analyze_plan=bool(analyze_plan),
            executor=executor,
            storage_options=storage_options,
        )
    if isinstance(table, str):
        return table
    if "query" in table.column_names:
        table = table.drop_columns(["query"])
    if "_distance" in table.column_names:
        table = table.sort_by("_distance")
    return table


# -- reading and writing ---------------------------------------------------------------


def read_lance(
    uri: Optional[str] = None,
    *,
    table_id: Optional[List[str]] = None,
    columns: Optional[List[str]] = None,
    filter: Optional[str] = None,
    storage_options: Optional[Dict[str, Any]] = None,
    base_store_params: Optional[Dict[str, Dict[str, Any]]] = None,
    scanner_options: Optional[Dict[str, Any]] = None,
    dataset_options: Optional[Dict[str, Any]] = None,
    fragment_ids: Optional[List[int]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    concurrency: Optional[int] = None,
    override_num_blocks: Optional[int] = None,
    with_metadata: bool = False,
) -> Any:
    """A Ray Dataset over one pinned version (``dataset_options={"version": v}``),
    the projection and filter pushed down into each fragment's scan;
    ``fragment_ids`` reads only those fragments (an id the version lacks is
    an error, where lance-ray skips it), ``with_metadata`` adds ``_rowaddr``
    and ``_fragid``; ``override_num_blocks`` sets the number of Ray read
    tasks, ``concurrency`` caps how many run at once. ``scanner_options``
    may carry ``columns``, ``filter`` (not both here and there) and
    ``with_row_address`` (which adds ``_fragid`` too)."""
    scan = dict(scanner_options or {})
    for key, given in (("columns", columns), ("filter", filter)):
        if key in scan:
            if given is not None:
                raise errors.InvalidInputError(
                    f"{key} is given both as a parameter and in scanner_options; give it once"
                )
            if key == "columns":
                columns = scan.pop(key)
            else:
                filter = scan.pop(key)
    if scan.pop("with_row_address", False):
        with_metadata = True
    unknown = sorted(scan)
    if unknown:
        raise NotImplementedError(
            f"scanner_options: lanceflow.ray does not support {', '.join(unknown)} yet "
            "(columns, filter and with_row_address are)"
        )
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    options = dict(dataset_options or {})
    version = options.pop("version", None)
    _not_yet(
        base_store_params=base_store_params,
        **{f"dataset_options['{k}']": v for k, v in options.items()},
    )
    tag = version if isinstance(version, str) else None
    number = version if isinstance(version, int) and not isinstance(version, bool) else None
    return api.read_lance(
        uri,
        columns=columns,
        filter=filter,
        version=number,
        tag=tag,
        # lance-ray reads every fragment for an empty list.
        fragment_ids=list(fragment_ids) if fragment_ids else None,
        with_metadata=with_metadata,
        storage_options=storage_options,
        ray_remote_args=ray_remote_args,
        concurrency=concurrency,
        override_num_blocks=override_num_blocks,
    )


def write_lance(
    ds: Any,
    uri: Optional[str] = None,
    *,
    table_id: Optional[List[str]] = None,
    schema: Optional[pa.Schema] = None,
    mode: str = "create",
    min_rows_per_file: int = 1024 * 1024,
    max_rows_per_file: int = 64 * 1024 * 1024,
    data_storage_version: Optional[str] = None,
    enable_stable_row_ids: bool = False,
    storage_options: Optional[Dict[str, Any]] = None,
    base_store_params: Optional[Dict[str, Dict[str, Any]]] = None,
    initial_bases: Optional[List[Any]] = None,
    target_bases: Optional[List[str]] = None,
    external_blob_mode: str = "reference",
    allow_external_blob_outside_bases: bool = False,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    concurrency: Optional[int] = None,
    stream: bool = False,
    batch_size: Optional[int] = None,
    resume_rows: int = 0,
) -> None:
    """Write a Ray Dataset (or an Arrow table, a pandas frame) as one new
    version: blocks staged as Parquet, one ingest task per file, one commit.
    ``stream=True`` writes each batch of ``batch_size`` rows straight into
    uncommitted fragments on the cluster instead (:class:`LanceFragmentWriter`
    in ``map_batches``, with ``concurrency`` and ``ray_remote_args``), then
    commits them all at once."""
    if ds is None:
        raise errors.InvalidInputError("write_lance: ds is None; pass a Ray Dataset")
    if mode not in ("create", "append", "overwrite"):
        raise errors.InvalidInputError(f"mode must be create, append or overwrite, not {mode!r}")
    if not (0 < int(min_rows_per_file) <= int(max_rows_per_file)):
        raise errors.InvalidInputError(
            "min_rows_per_file and max_rows_per_file must be positive, min ≤ max"
        )
    _not_yet(
        base_store_params=base_store_params,
        initial_bases=initial_bases,
        target_bases=target_bases,
        external_blob_mode=external_blob_mode != "reference",
        allow_external_blob_outside_bases=allow_external_blob_outside_bases,
        resume_rows=int(resume_rows) != 0,
    )
    if not stream:
        _not_yet(ray_remote_args=ray_remote_args, concurrency=concurrency, batch_size=batch_size)
    elif not hasattr(ds, "map_batches"):
        raise errors.InvalidInputError("stream=True writes a Ray Dataset; pass one (or leave stream off)")
    elif batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) <= 0):
        raise errors.InvalidInputError(f"batch_size must be positive, not {batch_size!r}")
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options,
                                write=True)
    if stream:
        if mode == "create":
            try:
                api.info(uri, storage_options=storage_options)
            except errors.NotFoundError:
                pass
            else:
                raise errors.AlreadyExistsError(
                    f"a dataset already exists at '{uri}'; use mode='append' or mode='overwrite'"
                )
        writer = LanceFragmentWriter(
            uri,
            schema=schema,
            max_rows_per_file=int(max_rows_per_file),
            data_storage_version=data_storage_version,
            enable_stable_row_ids=bool(enable_stable_row_ids),
            storage_options=storage_options,
            mode="append" if mode == "append" else "overwrite",
        )
        extra: Dict[str, Any] = dict(ray_remote_args or {})
        if concurrency is not None:
            extra["concurrency"] = concurrency
        staged = ds.map_batches(writer, batch_size=int(batch_size) if batch_size else None,
                                batch_format="pyarrow", **extra)
        try:
            staged.write_datasink(LanceFragmentCommitter(uri, mode=mode, storage_options=storage_options))
        except Exception as e:  # noqa: BLE001 - a write task's own error, not Ray's wrapping of it
            cause = getattr(e, "cause", None)
            if isinstance(cause, errors.LanceflowError):
                raise cause from None
            raise
        return
    with _Executor(1, None) as executor:
        api.write_lance(
            ds,
            uri,
            mode=mode,
            max_rows_per_file=int(max_rows_per_file),
            min_rows_per_file=int(min_rows_per_file),
            schema=schema,
            data_storage_version=data_storage_version,
            enable_stable_row_ids=bool(enable_stable_row_ids),
            executor=executor,
            storage_options=storage_options,
        )


# -- data evolution ------------------------------------------------------------------


def add_columns(
    uri: Optional[str] = None,
    *,
    transform: Any,
    filter: Optional[str] = None,
    read_columns: Optional[List[str]] = None,
    reader_schema: Optional[pa.Schema] = None,
    read_version: Optional[int] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    storage_options: Optional[Dict[str, Any]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    table_id: Optional[List[str]] = None,
    batch_size: int = 1024,
    concurrency: Optional[int] = None,
) -> None:
    """New columns for every row: ``transform`` is a dict ``{name: SQL
    expression}`` or a callable over pyarrow RecordBatches (of
    ``read_columns``), run inside the Ray actors that run lanceflow's tasks,
    one task per group of fragments, one ``Merge`` commit. ``reader_schema``
    fixes the new columns' schema (else learnt from a few rows);
    ``concurrency`` is the number of actors (default 4)."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    if filter is not None:
        raise errors.InvalidInputError(
            "add_columns: filter is not supported (every row gets the new columns; lance-ray "
            "ignores it too); leave it unset"
        )
    _add_columns(uri, transform, read_columns, reader_schema, read_version, ray_remote_args,
                 storage_options, batch_size, concurrency, as_dict=False)


def _add_columns(uri, transform, read_columns, schema, read_version, ray_remote_args,
                 storage_options, batch_size, concurrency, as_dict) -> None:
    workers = 4 if concurrency is None else concurrency
    with _Executor(workers, ray_remote_args) as executor:
        api.add_columns(
            uri,
            transform,
            read_columns=read_columns,
            output_schema=schema,
            version=read_version,
            batch_size=batch_size,
            as_dict=as_dict,
            executor=executor,
            storage_options=storage_options,
        )


def add_columns_from(
    uri: Optional[str] = None,
    *,
    transform: Any,
    read_columns: Optional[List[str]] = None,
    read_version: Optional[int] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    storage_options: Optional[Dict[str, Any]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    table_id: Optional[List[str]] = None,
    batch_size: int = 1024,
) -> None:
    """lance-ray's ``add_columns_from``: the transform takes a dict of Python
    lists (the ``read_columns`` of a batch of rows) and returns only the new
    columns (dict, Table or RecordBatch); a pylance ``BatchUDF`` takes the
    RecordBatch. Runs as :func:`add_columns` does (in lanceflow's tasks, no
    shuffle); a new column that already exists is an error, not dropped."""
    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    if isinstance(transform, dict):
        raise errors.InvalidInputError(
            "add_columns_from takes a callable; for SQL expressions use add_columns(transform={...})"
        )
    as_dict = not isinstance(getattr(transform, "output_schema", None), pa.Schema)
    _add_columns(uri, transform, read_columns, None, read_version, ray_remote_args,
                 storage_options, batch_size, None, as_dict=as_dict)


def merge_columns_from(
    uri: Optional[str] = None,
    ds: Any = None,
    *,
    read_version: Optional[int] = None,
    ray_remote_args: Optional[Dict[str, Any]] = None,
    storage_options: Optional[Dict[str, Any]] = None,
    namespace_impl: Optional[str] = None,
    namespace_properties: Optional[Dict[str, str]] = None,
    table_id: Optional[List[str]] = None,
    batch_size: int = 1024,
    require_full_coverage: bool = True,
) -> None:
    """Join the new columns of a Ray Dataset back to the rows its
    ``_rowaddr`` names (rows in any order; ``_fragid`` derived when absent):
    one group per fragment writes that fragment's columns on the cluster,
    checked to be exactly its live rows; one ``Merge`` commit. Columns the
    dataset already has are left out (as lance-ray does). With
    ``require_full_coverage=False`` fragments with no rows read null."""
    from . import _native

    uri, storage_options = _uri(uri, namespace_impl, namespace_properties, table_id, storage_options)
    if ds is None:
        raise errors.InvalidInputError("merge_columns_from: ds is None; pass a Ray Dataset")
    names = ds.schema().names
    if "_rowaddr" not in names:
        raise errors.InvalidInputError(
            "merge_columns_from: ds has no _rowaddr column; read it with "
            "read_lance(..., with_metadata=True) and keep _rowaddr"
        )
    size = api._batch_size(batch_size)
    version = read_version if read_version is not None else api.info(
        uri, storage_options=storage_options)["version"]
    if "_fragid" not in names:
        import pyarrow.compute as pc

        ds = ds.map_batches(
            lambda t: t.append_column("_fragid", pc.shift_right(t["_rowaddr"], 32)),
            batch_format="pyarrow",
        )
    options = dict(storage_options or {})

    def write(group: pa.Table) -> pa.Table:
        from lanceflow import _native as native
        from lanceflow.api import _session

        # Ray Data's row-wise steps (filter, map) turn uint64 into int64.
        at = group.schema.get_field_index("_rowaddr")
        if group.schema.field(at).type != pa.uint64():
            try:
                group = group.set_column(at, "_rowaddr", group.column(at).cast(pa.uint64()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise errors.InvalidInputError(f"_rowaddr must hold row addresses (uint64): {e}") from None
        written = native.write_row_columns(
            _session(executor="local", storage_options=options), uri, version, group, size)
        return pa.table({"written": [written]})

    groups = ds.groupby("_fragid").map_groups(write, batch_format="pyarrow", **dict(ray_remote_args or {}))
    try:
        written = [row["written"] for row in groups.take_all()]
    except Exception as e:  # noqa: BLE001 - a group's own error, not Ray's wrapping of it
        cause = getattr(e, "cause", None)
        if isinstance(cause, errors.LanceflowError):
            raise cause from None
        raise
    _native.commit_columns(
        api._session(executor="local", storage_options=options), uri, version, written,
        allow_missing=not require_full_coverage,
    )


# -- fragments from Ray Data pipelines ----------------------------------------------

try:  # the committer is a Ray Data sink; the module imports without Ray too
    from ray.data import Datasink as _Datasink
except ImportError:  # pragma: no cover - Ray is a dependency of this module's use
    _Datasink = object


def _as_table(data: Any, what: str) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, dict):
        return pa.table(data)
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except (TypeError, AttributeError, pa.ArrowInvalid) as e:
        raise errors.InvalidInputError(
            f"{what} must be a pyarrow Table or RecordBatch, a dict of columns or a pandas "
            f"DataFrame, not {type(data).__name__} ({e})"
        ) from None


class LanceFragmentWriter:
    """Write each batch of a Ray Data pipeline into uncommitted fragments of
    the dataset, as a ``map_batches`` step; every output row is one staged
    part (``fragment``: the staged fragments as JSON, ``schema``: the Arrow
    schema they were written with) for :class:`LanceFragmentCommitter`,
    which commits them all as one version::

        ds.map_batches(LanceFragmentWriter(uri, schema=schema), batch_size=1000) \\
          .write_datasink(LanceFragmentCommitter(uri))

    When the dataset exists the fragments are written with its schema (for
    an append; ``mode="overwrite"`` writes the data's own schema instead).
    ``transform`` is applied to each batch first."""

    def __init__(
        self,
        uri: Optional[str] = None,
        *,
        transform: Optional[Any] = None,
        schema: Optional[pa.Schema] = None,
        max_rows_per_file: int = 1024 * 1024,
        max_bytes_per_file: Optional[int] = None,
        max_rows_per_group: Optional[int] = None,
        data_storage_version: Optional[str] = None,
        enable_stable_row_ids: bool = False,
        use_legacy_format: bool = False,
        storage_options: Optional[Dict[str, Any]] = None,
        base_store_params: Optional[Dict[str, Any]] = None,
        initial_bases: Optional[List[Any]] = None,
        target_bases: Optional[List[str]] = None,
        external_blob_mode: str = "reference",
        allow_external_blob_outside_bases: bool = False,
        namespace_impl: Optional[str] = None,
        namespace_properties: Optional[Dict[str, str]] = None,
        table_id: Optional[List[str]] = None,
        retry_params: Optional[Dict[str, Any]] = None,
        mode: Optional[str] = None,
    ) -> None:
        _not_yet(
            max_bytes_per_file=max_bytes_per_file,
            max_rows_per_group=max_rows_per_group,
            use_legacy_format=use_legacy_format,
            base_store_params=base_store_params,
            initial_bases=initial_bases,
            target_bases=target_bases,
            external_blob_mode=external_blob_mode != "reference",
            allow_external_blob_outside_bases=allow_external_blob_outside_bases,
            retry_params=retry_params,
        )
        if transform is not None and not callable(transform):
            raise errors.InvalidInputError(f"transform must be callable, not {type(transform).__name__}")
        if schema is not None and not isinstance(schema, pa.Schema):
            raise errors.InvalidInputError(f"schema must be a pyarrow.Schema, not {type(schema).__name__}")
        if isinstance(max_rows_per_file, bool) or int(max_rows_per_file) <= 0:
            raise errors.InvalidInputError(f"max_rows_per_file must be positive, not {max_rows_per_file!r}")
        if mode not in (None, "create", "append", "overwrite"):
            raise errors.InvalidInputError(f"mode must be create, append or overwrite, not {mode!r}")
        self.uri, self.storage_options = _uri(uri, namespace_impl, namespace_properties, table_id,
                                              storage_options, write=True)
        if mode is None:
            try:
                api.info(self.uri, storage_options=self.storage_options)
                mode = "append"
            except errors.NotFoundError:
                mode = "create"
        self.mode = mode
        self.transform = transform
        self.schema = schema
        self.max_rows_per_file = int(max_rows_per_file)
        self.data_storage_version = data_storage_version
        self.enable_stable_row_ids = bool(enable_stable_row_ids)

    def __call__(self, batch: Any) -> pa.Table:
        from lanceflow import _native as native

        table = _as_table(batch, "a batch")
        if self.transform is not None:
            table = _as_table(self.transform(table), "the transform's result")
        if table.num_rows == 0:
            return pa.table({"fragment": pa.array([], pa.binary()), "schema": pa.array([], pa.binary())})
        staged = native.stage_arrow(
            api._session(executor="local", storage_options=self.storage_options),
            table,
            self.uri,
            self.mode,
            self.max_rows_per_file,
            self.data_storage_version,
            self.enable_stable_row_ids,
            schema=self.schema,
        )
        written = (self.schema or table.schema).serialize().to_pybytes()
        return pa.table({"fragment": pa.array([staged.encode()], pa.binary()),
                         "schema": pa.array([written], pa.binary())})


class LanceFragmentCommitter(_Datasink):
    """A Ray Data sink committing what :class:`LanceFragmentWriter` staged as
    one new version: ``mode`` "create" (the dataset must not exist),
    "append" or "overwrite". Nothing is committed when nothing was staged."""

    def __init__(
        self,
        uri: Optional[str] = None,
        table_id: Optional[List[str]] = None,
        *,
        schema: Optional[pa.Schema] = None,
        mode: str = "create",
        enable_stable_row_ids: bool = False,
        storage_options: Optional[Dict[str, Any]] = None,
        base_store_params: Optional[Dict[str, Any]] = None,
        initial_bases: Optional[List[Any]] = None,
        target_bases: Optional[List[str]] = None,
        namespace_impl: Optional[str] = None,
        namespace_properties: Optional[Dict[str, str]] = None,
    ) -> None:
        _not_yet(base_store_params=base_store_params, initial_bases=initial_bases, target_bases=target_bases)
        if mode not in ("create", "append", "overwrite"):
            raise errors.InvalidInputError(f"mode must be create, append or overwrite, not {mode!r}")
        self.uri, self.storage_options = _uri(uri, namespace_impl, namespace_properties, table_id,
                                              storage_options, write=True)
        self.mode = mode
        # The writer decides the layout; the schema is checked against its parts.
        self.schema = schema

    def write(self, blocks: Any, ctx: Any) -> List[str]:
        staged: List[str] = []
        for block in blocks:
            table = _as_table(block, "a block")
            if table.num_rows == 0:
                continue  # Ray hands empty blocks on as they are
            if "fragment" not in table.column_names:
                raise errors.InvalidInputError(
                    "LanceFragmentCommitter takes the output of LanceFragmentWriter (a 'fragment' column)"
                )
            staged.extend(bytes(b).decode() for b in table.column("fragment").to_pylist())
        return staged

    def on_write_complete(self, write_result: Any) -> None:
        from lanceflow import _native as native

        returns = getattr(write_result, "write_returns", write_result)
        staged = [part for task in returns for part in (task or [])]
        if not staged:
            return
        if self.schema is not None:
            import json

            names = [f["name"] for f in json.loads(staged[0])["schema"]["fields"]]
            if names != self.schema.names:
                raise errors.InvalidInputError(
                    f"the staged fragments have columns {names}, the committer's schema {self.schema.names}"
                )
        native.commit_staged(
            api._session(executor="local", storage_options=self.storage_options),
            self.uri,
            staged,
            self.mode,
        )
