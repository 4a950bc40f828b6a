//! The engine's errors as Python exceptions: one class per error kind.
//!
//! The classes live in `lanceflow/errors.py`: each derives from
//! `LanceflowError` and from the builtin a Python user expects (Python
//! classes can have two bases, PyO3's cannot), so the native module raises
//! them by name.

use lanceflow::ErrorKind;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

macro_rules! python_errors {
    ($($name:ident),* $(,)?) => {$(
        pub(crate) struct $name;
        impl $name {
            pub(crate) fn new_err(message: impl Into<String>) -> PyErr {
                raise_by_name(stringify!($name), message.into())
            }
        }
    )*};
}

python_errors!(
    InvalidInputError,
    NotFoundError,
    AlreadyExistsError,
    NotSupportedError,
    CommitConflictError,
    StorageError,
    TasksFailedError,
    InternalError,
);

/// An instance of `lanceflow.errors.<name>` (a `RuntimeError` naming the
/// class if the package cannot be imported, e.g. the native module alone).
fn raise_by_name(name: &'static str, message: String) -> PyErr {
    Python::attach(|py| {
        let class = py
            .import("lanceflow.errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, message),
            Err(_) => PyRuntimeError::new_err(format!("{name}: {message}")),
        }
    })
}

/// The Python exception for an engine error.
pub(crate) fn to_py_err(err: lanceflow::Error) -> PyErr {
    error_of_kind(err.kind(), err.to_string())
}

/// The Python exception of an error kind.
pub(crate) fn error_of_kind(kind: ErrorKind, message: String) -> PyErr {
    match kind {
        ErrorKind::InvalidInput => InvalidInputError::new_err(message),
        ErrorKind::NotFound => NotFoundError::new_err(message),
        ErrorKind::AlreadyExists => AlreadyExistsError::new_err(message),
        ErrorKind::NotSupported => NotSupportedError::new_err(message),
        ErrorKind::CommitConflict => CommitConflictError::new_err(message),
        ErrorKind::Storage => StorageError::new_err(message),
        ErrorKind::TasksFailed => TasksFailedError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
    }
}

/// An internal error from anything printable (a failed conversion).
pub(crate) fn internal(err: impl std::fmt::Display) -> PyErr {
    InternalError::new_err(err.to_string())
}
