//! Tasks: what travels between the driver and the workers.
//!
//! A [`TaskSpec`] is plain data (the operation's name plus a JSON payload with
//! fragment ids, read version, parameters, trained artifacts), so the same
//! task runs in a thread, a process or a Ray worker. A [`TaskOutcome`] is what
//! comes back. Operations implement [`DistributedOp`] to give their tasks and
//! results types.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One serialized unit of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The operation that knows how to execute the payload (e.g. `ingest`).
    pub operation: String,
    /// Index of the task in its plan (results are returned in this order).
    pub index: usize,
    /// Human-readable description for progress and error messages.
    pub label: String,
    /// The operation-specific task, as JSON.
    pub payload: serde_json::Value,
}

/// An error as it travels back from a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// The failure's kind.
    pub kind: ErrorKind,
    /// The failure's message.
    pub message: String,
}

impl From<&Error> for TaskError {
    fn from(err: &Error) -> Self {
        TaskError {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

impl TaskError {
    /// Whether an executor should try the task again.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// What an executor hands back for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// The task's index in its plan.
    pub index: usize,
    /// The task's label.
    pub label: String,
    /// The operation's result as JSON, or the last error.
    pub result: std::result::Result<serde_json::Value, TaskError>,
    /// How many times the task was run.
    pub attempts: u32,
    /// Seconds spent on the task (all attempts).
    pub seconds: f64,
}

/// A distributed operation's task type and how a worker executes it.
pub trait DistributedOp: Send + Sync + 'static {
    /// Name under which the task handler dispatches tasks of this operation.
    const NAME: &'static str;
    /// A task: plain data, no handles.
    type Task: Serialize + DeserializeOwned + Send + 'static;
    /// What one task returns to the driver.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Short description of a task (an input file, a fragment range...).
    fn label(task: &Self::Task) -> String;

    /// Run one task. Must be idempotent and must not commit: executors may run
    /// a task more than once.
    fn execute(task: Self::Task) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// Serialize typed tasks into [`TaskSpec`]s.
pub fn to_specs<O: DistributedOp>(tasks: &[O::Task]) -> Result<Vec<TaskSpec>> {
    tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            Ok(TaskSpec {
                operation: O::NAME.to_string(),
                index,
                label: O::label(task),
                payload: serde_json::to_value(task)?,
            })
        })
        .collect()
}
