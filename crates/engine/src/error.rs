//! The engine's one error type.
//!
//! Variants are named for what the caller should do next: fix the input, create
//! what is missing, retry, or report a bug. Every message is written for the
//! person at the terminal and, where there is one, names the fix. Storage
//! secrets never reach a message: errors are built from URIs and option *names*.

use std::fmt;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One failed task of a distributed operation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TaskFailure {
    /// Index of the task in its plan.
    pub task: usize,
    /// What the task was working on (an input file, a fragment group...).
    pub label: String,
    /// The error's kind.
    pub kind: ErrorKind,
    /// The error message.
    pub message: String,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {} ({}): {}", self.task, self.label, self.message)
    }
}

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller gave something unusable: a bad option, a malformed file, a
    /// schema that does not fit. Fix the input and run again.
    #[error("{0}")]
    InvalidInput(String),

    /// A dataset, version, tag, file or column that was named does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The thing to be created already exists.
    #[error("{0}")]
    AlreadyExists(String),

    /// The request is valid but this build or this storage cannot do it.
    #[error("{0}")]
    NotSupported(String),

    /// Another writer committed first and the two changes cannot both land.
    /// Re-running the command is safe.
    #[error("commit conflict: {0} (nothing was committed; re-running the command is safe)")]
    CommitConflict(String),

    /// The object store or file system failed or could not be reached.
    #[error("{0}")]
    Storage(String),

    /// Some tasks of a distributed operation failed; nothing was committed.
    #[error("{operation}: {} of {total} tasks failed, nothing was committed:\n{}", failures.len(), render_failures(failures))]
    TasksFailed {
        /// The operation, e.g. `ingest`.
        operation: String,
        /// Number of tasks in the plan.
        total: usize,
        /// Every failure, in task order.
        failures: Vec<TaskFailure>,
    },

    /// A bug in lanceflow (or lance): please report it with the message.
    #[error("internal error (a bug, please report it): {0}")]
    Internal(String),
}

fn render_failures(failures: &[TaskFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("  - {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What kind of failure an [`Error`] is: the one machine-readable name of a
/// failure at every boundary (task results, the executor protocol, JSON
/// output, HTTP bodies, Python exception classes). Serialized in snake case
/// (`invalid_input`, `not_found`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// [`Error::InvalidInput`].
    InvalidInput,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::AlreadyExists`].
    AlreadyExists,
    /// [`Error::NotSupported`].
    NotSupported,
    /// [`Error::CommitConflict`].
    CommitConflict,
    /// [`Error::Storage`].
    Storage,
    /// [`Error::TasksFailed`].
    TasksFailed,
    /// [`Error::Internal`].
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::NotSupported,
        ErrorKind::CommitConflict,
        ErrorKind::Storage,
        ErrorKind::TasksFailed,
        ErrorKind::Internal,
    ];

    /// The kind's name, as it is serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::CommitConflict => "commit_conflict",
            ErrorKind::Storage => "storage",
            ErrorKind::TasksFailed => "tasks_failed",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind named `name`; an unknown name is [`ErrorKind::Internal`]
    /// (a peer that speaks a newer protocol failed in a way we cannot name).
    pub fn parse(name: &str) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or(ErrorKind::Internal)
    }

    /// Whether re-running the same work may succeed (executors retry these).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Storage | ErrorKind::CommitConflict)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The variant's [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::CommitConflict(_) => ErrorKind::CommitConflict,
            Error::Storage(_) => ErrorKind::Storage,
            Error::TasksFailed { .. } => ErrorKind::TasksFailed,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Rebuild an error from its kind and message (the inverse of
    /// [`Error::kind`] + `to_string`, used when a task's error travels back as
    /// data from a worker). [`ErrorKind::TasksFailed`] comes back as
    /// [`Error::Internal`]: its task list does not travel.
    pub fn from_kind(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::InvalidInput => Error::InvalidInput(message),
            ErrorKind::NotFound => Error::NotFound(message),
            ErrorKind::AlreadyExists => Error::AlreadyExists(message),
            ErrorKind::NotSupported => Error::NotSupported(message),
            ErrorKind::CommitConflict => Error::CommitConflict(message),
            ErrorKind::Storage => Error::Storage(message),
            ErrorKind::TasksFailed | ErrorKind::Internal => Error::Internal(message),
        }
    }

    /// Whether re-running the same work may succeed (executors retry these).
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    pub(crate) fn internal(msg: impl fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// Wrap a lance error that happened while doing `context` on `uri`.
    pub(crate) fn lance(context: &str, uri: &str, err: lance::Error) -> Self {
        from_lance(context, uri, err)
    }
}

/// Bail out with [`Error::InvalidInput`].
macro_rules! bail_invalid {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::InvalidInput(format!($($arg)*)))
    };
}
pub(crate) use bail_invalid;

/// `FromStr` through the type's own `parse` (the one place a name becomes
/// the type, whatever front end parsed it).
macro_rules! from_str_by_parse {
    ($($t:ty),+ $(,)?) => {
        $(impl std::str::FromStr for $t {
            type Err = $crate::error::Error;
            fn from_str(text: &str) -> $crate::error::Result<Self> {
                Self::parse(text)
            }
        })+
    };
}
pub(crate) use from_str_by_parse;

/// Bail out with [`Error::InvalidInput`] unless the condition holds.
macro_rules! ensure_invalid {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::error::Error::InvalidInput(format!($($arg)*)));
        }
    };
}
pub(crate) use ensure_invalid;

fn looks_like_connection_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "connection refused",
        "error sending request",
        "dns error",
        "failed to lookup address",
        "tcp connect error",
        "connection reset",
        "timed out",
        "client error (connect)",
    ]
    .iter()
    .any(|needle| t.contains(needle))
}

fn from_lance(context: &str, uri: &str, err: lance::Error) -> Error {
    use lance::Error as L;
    let text = without_source_location(&err.to_string());
    if looks_like_connection_failure(&text) {
        return Error::Storage(format!(
            "{context}: could not reach the object store for '{uri}' ({}). Check the endpoint \
             (AWS_ENDPOINT / OSS_ENDPOINT or --storage-option aws_endpoint=...), that the server \
             is running, and the network",
            first_line(&text)
        ));
    }
    match err {
        L::DatasetNotFound { .. } => Error::NotFound(format!(
            "{context}: no Lance dataset at '{uri}'. Check the URI, or create it first with \
             `lanceflow ingest INPUT --to {uri}`"
        )),
        L::DatasetAlreadyExists { .. } => Error::AlreadyExists(format!(
            "{context}: a dataset already exists at '{uri}'. Use --mode append to add rows or \
             --mode overwrite to replace it"
        )),
        L::VersionNotFound { .. } => Error::NotFound(format!(
            "{context}: {}. List versions with `lanceflow versions {uri}`",
            first_line(&text)
        )),
        L::RefNotFound { .. } => Error::NotFound(format!(
            "{context}: {}. List tags with `lanceflow tag list {uri}`",
            first_line(&text)
        )),
        L::RefConflict { .. } => Error::AlreadyExists(format!("{context}: {}", first_line(&text))),
        L::InvalidRef { .. } => Error::InvalidInput(format!("{context}: {}", first_line(&text))),
        L::CommitConflict { .. }
        | L::RetryableCommitConflict { .. }
        | L::IncompatibleTransaction { .. }
        | L::TooMuchWriteContention { .. } => {
            Error::CommitConflict(format!("{context} on '{uri}': {}", first_line(&text)))
        }
        L::InvalidInput { .. }
        | L::SchemaMismatch { .. }
        | L::Schema { .. }
        | L::FieldNotFound { .. }
        | L::Arrow { .. } => Error::InvalidInput(format!("{context}: {text}")),
        L::NotSupported { .. } => Error::NotSupported(format!("{context}: {text}")),
        L::NotFound { .. } | L::IndexNotFound { .. } => {
            Error::NotFound(format!("{context}: {text}"))
        }
        L::IO { .. } | L::CorruptFile { .. } | L::Timeout { .. } => {
            Error::Storage(format!("{context} on '{uri}': {text}"))
        }
        _ => Error::Internal(format!("{context} on '{uri}': {text}")),
    }
}

/// `text` without the source locations lance appends to its messages
/// (`..., /root/.cargo/registry/src/.../lance-io-14.0.2/src/object_store.rs:1576:42`):
/// a file of a dependency is nothing a user can act on.
pub(crate) fn without_source_location(text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some(at) = line.rfind(", ") else {
                return line;
            };
            let mut parts = line[at + 2..].rsplitn(3, ':');
            let digits = |s: Option<&str>| {
                s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            };
            let (column, row, file) = (parts.next(), parts.next(), parts.next());
            let is_location = digits(column)
                && digits(row)
                && file.is_some_and(|f| f.ends_with(".rs") && !f.contains(' '));
            if is_location {
                &line[..at]
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Storage(err.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Internal(format!("serialization: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for err in [
            Error::InvalidInput("a".into()),
            Error::NotFound("b".into()),
            Error::AlreadyExists("c".into()),
            Error::NotSupported("d".into()),
            Error::CommitConflict("e".into()),
            Error::Storage("f".into()),
            Error::Internal("g".into()),
        ] {
            let back = Error::from_kind(err.kind(), "m".into());
            assert_eq!(back.kind(), err.kind());
        }
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
            assert_eq!(ErrorKind::parse(kind.as_str()), kind);
        }
        assert_eq!(ErrorKind::parse("from_the_future"), ErrorKind::Internal);
    }

    #[test]
    fn tasks_failed_lists_every_failure() {
        let err = Error::TasksFailed {
            operation: "ingest".into(),
            total: 3,
            failures: vec![
                TaskFailure {
                    task: 0,
                    label: "a.jsonl".into(),
                    kind: ErrorKind::InvalidInput,
                    message: "bad line 3".into(),
                },
                TaskFailure {
                    task: 2,
                    label: "c.jsonl".into(),
                    kind: ErrorKind::Storage,
                    message: "disk full".into(),
                },
            ],
        };
        let text = err.to_string();
        assert!(text.contains("2 of 3 tasks failed"), "{text}");
        assert!(
            text.contains("a.jsonl") && text.contains("bad line 3"),
            "{text}"
        );
        assert!(
            text.contains("c.jsonl") && text.contains("disk full"),
            "{text}"
        );
    }

    #[test]
    fn lance_source_locations_are_dropped() {
        assert_eq!(
            without_source_location(
                "LanceError(IO): Generic S3 error: HTTP error: error sending request, \
                 /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lance-io-14.0.2/\
                 src/object_store.rs:1576:42"
            ),
            "LanceError(IO): Generic S3 error: HTTP error: error sending request"
        );
        assert_eq!(
            without_source_location("first, src/a.rs:1:2\nsecond line, lance/src/b.rs:30:7"),
            "first\nsecond line"
        );
        for kept in [
            "column 'a, b' not found",
            "see notes, section 1:2",
            "file x.rs:1:2 is corrupt",
            "bad, y.rs:a:1",
            "spaces, my file.rs:1:2",
        ] {
            assert_eq!(without_source_location(kept), kept);
        }
    }

    #[test]
    fn connection_failures_are_storage_errors() {
        assert!(looks_like_connection_failure(
            "Generic S3 error: error sending request: Connection refused (os error 111)"
        ));
        assert!(!looks_like_connection_failure("column 'x' not found"));
    }
}
