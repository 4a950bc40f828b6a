//! Progress reporting: the engine reports, front ends render.
//!
//! Long work (ingest, embedding, index builds) reports [`ProgressEvent`]s to a
//! [`Progress`] sink. The engine ships a do-nothing sink; the CLI renders a bar
//! on a terminal or JSON lines elsewhere (pipes, CI, Ray workers).

use serde::{Deserialize, Serialize};

/// One thing worth telling the user about a long operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A stage began; `total` tasks (or units) are expected.
    StageStarted {
        /// Short stage name, e.g. `ingest`.
        stage: String,
        /// Units of work expected, when known.
        total: Option<u64>,
        /// What a unit is: `tasks`, `rows`...
        unit: String,
    },
    /// One task finished (successfully or not).
    TaskFinished {
        /// The stage the task belongs to.
        stage: String,
        /// The task's index in its plan.
        task: usize,
        /// Whether it succeeded.
        ok: bool,
        /// Rows the task processed, when it knows.
        rows: Option<u64>,
        /// Seconds the task ran.
        seconds: f64,
    },
    /// A task is being retried after a retryable failure.
    TaskRetried {
        /// The stage the task belongs to.
        stage: String,
        /// The task's index in its plan.
        task: usize,
        /// Which attempt comes next (2 = first retry).
        attempt: u32,
        /// Why the previous attempt failed.
        reason: String,
    },
    /// A free-form note (e.g. "committing version 3").
    Message {
        /// The stage it belongs to.
        stage: String,
        /// The text.
        text: String,
    },
    /// The stage ended.
    StageFinished {
        /// The stage name.
        stage: String,
        /// Whether it succeeded as a whole.
        ok: bool,
        /// Seconds the stage took.
        seconds: f64,
    },
}

/// A sink for progress events. Implementations must be cheap and never block
/// for long: events arrive from worker threads.
pub trait Progress: Send + Sync {
    /// Receive one event.
    fn report(&self, event: ProgressEvent);
}

/// The default sink: ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _event: ProgressEvent) {}
}

/// A sink that keeps every event (for tests and for callers that render later).
#[derive(Debug, Default)]
pub struct RecordingProgress {
    events: std::sync::Mutex<Vec<ProgressEvent>>,
}

impl RecordingProgress {
    /// The events received so far.
    pub fn events(&self) -> Vec<ProgressEvent> {
        match self.events.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Progress for RecordingProgress {
    fn report(&self, event: ProgressEvent) {
        match self.events.lock() {
            Ok(mut guard) => guard.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}

/// Helper that reports a message on a stage.
pub(crate) fn note(progress: &dyn Progress, stage: &str, text: impl Into<String>) {
    progress.report(ProgressEvent::Message {
        stage: stage.to_string(),
        text: text.into(),
    });
}
