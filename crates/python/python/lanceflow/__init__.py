"""lanceflow: raw text to a searchable Lance vector knowledge base.

The engine is Rust (``lanceflow._native``); this package adds the Ray
executor and a Python API whose names a lance-ray user recognises. Every
operation runs as plan → tasks → execute → commit: the driver plans against
one pinned version and commits once, workers (threads here, or Ray tasks and
actors) only execute tasks.

Every function that takes a dataset ``uri`` can instead name a table of a
Lance namespace: ``namespace_impl="dir"``, ``namespace_properties={"root":
...}`` (or ``"rest"`` with ``{"uri": ...}``) and ``table_id=["docs"]``.
"""

from ._native import __version__
from .errors import (
    AlreadyExistsError,
    CommitConflictError,
    InternalError,
    InvalidInputError,
    LanceflowError,
    NotFoundError,
    NotSupportedError,
    StorageError,
    TasksFailedError,
)
from .api import (
    add_columns,
    cleanup,
    compact_files,
    create_index,
    create_scalar_index,
    embed,
    hybrid_search,
    info,
    ingest,
    merge_columns,
    optimize_indices,
    read_lance,
    resolve_table,
    search_text,
    vector_search,
    versions,
    write_lance,
)
from .executor import RayExecutor

__all__ = [
    "AlreadyExistsError",
    "CommitConflictError",
    "InternalError",
    "InvalidInputError",
    "LanceflowError",
    "NotFoundError",
    "NotSupportedError",
    "RayExecutor",
    "StorageError",
    "TasksFailedError",
    "__version__",
    "add_columns",
    "cleanup",
    "compact_files",
    "create_index",
    "create_scalar_index",
    "embed",
    "hybrid_search",
    "info",
    "ingest",
    "merge_columns",
    "optimize_indices",
    "read_lance",
    "resolve_table",
    "search_text",
    "vector_search",
    "versions",
    "write_lance",
]
