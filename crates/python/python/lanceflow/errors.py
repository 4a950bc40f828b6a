"""lanceflow's exceptions: one class per engine error kind.

Each also derives from the builtin a Python user would catch around such a
call (lance-ray and pylance raise builtins), so code written against them
keeps working: invalid input is a ``ValueError``, something missing a
``FileNotFoundError`` and a ``KeyError``, storage faults an ``OSError``,
conflicts and failed tasks a ``RuntimeError``. The native module raises
these classes by name (``lanceflow._native`` looks them up here).
"""


class LanceflowError(Exception):
    """Base class of every lanceflow error."""


class InvalidInputError(LanceflowError, ValueError):
    """Bad input: fix the argument or data named in the message."""


class NotFoundError(LanceflowError, FileNotFoundError, KeyError):
    """A dataset, column, index, version or tag does not exist."""

    def __str__(self) -> str:  # not KeyError's quoted repr
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class AlreadyExistsError(LanceflowError, FileExistsError):
    """The target exists (use the replace/overwrite option)."""


class NotSupportedError(LanceflowError, NotImplementedError):
    """The operation is not supported for this input."""


class CommitConflictError(LanceflowError, RuntimeError):
    """A concurrent writer won; retrying may succeed."""


class StorageError(LanceflowError, OSError):
    """The storage layer failed (network, permissions, corrupt files)."""


class TasksFailedError(LanceflowError, RuntimeError):
    """One or more tasks failed; nothing was committed."""


class InternalError(LanceflowError, RuntimeError):
    """A bug in lanceflow: please report it."""


__all__ = [
    "AlreadyExistsError",
    "CommitConflictError",
    "InternalError",
    "InvalidInputError",
    "LanceflowError",
    "NotFoundError",
    "NotSupportedError",
    "StorageError",
    "TasksFailedError",
]
