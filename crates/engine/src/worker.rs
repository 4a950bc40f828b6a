//! The worker side of the spine: run one serialized task, whatever it is.
//!
//! This is the single entry point an executor needs. The local executor calls
//! it on a tokio thread; the Ray executor calls it (through the Python
//! package) inside a Ray task with the same JSON.

use crate::compact::CompactOp;
use crate::embed::EmbedOp;
use crate::error::{Error, Result};
use crate::ingest::IngestOp;
use crate::optimize::{OptimizeBuildOp, OptimizeMergeOp};
use crate::scalar_index::ScalarSegmentOp;
use crate::search::VectorSearchOp;
use crate::task::{execute_spec, DistributedOp, TaskSpec};
use crate::train::{KMeansStepOp, PqTrainOp, SampleOp};
use crate::vector_index::VectorSegmentOp;

/// Names of every operation a worker can execute.
pub const OPERATIONS: &[&str] = &[
    IngestOp::NAME,
    EmbedOp::NAME,
    VectorSegmentOp::NAME,
    ScalarSegmentOp::NAME,
    VectorSearchOp::NAME,
    CompactOp::NAME,
    OptimizeBuildOp::NAME,
    OptimizeMergeOp::NAME,
    SampleOp::NAME,
    KMeansStepOp::NAME,
    PqTrainOp::NAME,
];

/// Execute one task and return its result as JSON.
#[tracing::instrument(level = "debug", skip_all, fields(op = %spec.operation, task = spec.index))]
pub async fn execute_task(spec: &TaskSpec) -> Result<serde_json::Value> {
    match spec.operation.as_str() {
        IngestOp::NAME => execute_spec::<IngestOp>(spec).await,
        EmbedOp::NAME => execute_spec::<EmbedOp>(spec).await,
        VectorSegmentOp::NAME => execute_spec::<VectorSegmentOp>(spec).await,
        ScalarSegmentOp::NAME => execute_spec::<ScalarSegmentOp>(spec).await,
        VectorSearchOp::NAME => execute_spec::<VectorSearchOp>(spec).await,
        CompactOp::NAME => execute_spec::<CompactOp>(spec).await,
        OptimizeBuildOp::NAME => execute_spec::<OptimizeBuildOp>(spec).await,
        OptimizeMergeOp::NAME => execute_spec::<OptimizeMergeOp>(spec).await,
        SampleOp::NAME => execute_spec::<SampleOp>(spec).await,
        KMeansStepOp::NAME => execute_spec::<KMeansStepOp>(spec).await,
        PqTrainOp::NAME => execute_spec::<PqTrainOp>(spec).await,
        #[cfg(test)]
        tests_support::FlakyOp::NAME => execute_spec::<tests_support::FlakyOp>(spec).await,
        other => Err(Error::NotSupported(format!(
            "this worker does not know the operation '{other}' (known: {}); driver and worker \
             must run the same lanceflow version",
            OPERATIONS.join(", ")
        ))),
    }
}

/// Execute a task given as a JSON string, returning the result as a JSON
/// string: the boundary the Python package and other processes use.
pub async fn execute_task_json(spec_json: &str) -> Result<String> {
    let spec: TaskSpec = serde_json::from_str(spec_json)
        .map_err(|e| Error::InvalidInput(format!("not a lanceflow task: {e}")))?;
    let value = execute_task(&spec).await?;
    Ok(serde_json::to_string(&value)?)
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! A test-only operation to exercise executors without any storage.
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde::{Deserialize, Serialize};

    use crate::error::{Error, Result};
    use crate::task::DistributedOp;

    /// Attempts seen per key, so tests can check retries.
    pub static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
    /// Slow tasks that ran to completion.
    pub static SLOW_DONE: AtomicU32 = AtomicU32::new(0);

    pub struct FlakyOp;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct FlakyTask {
        pub value: u64,
        /// `invalid`, `storage_once`, `panic`, `slow` or nothing.
        pub fail: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct FlakyOutput {
        pub doubled: u64,
        pub rows: u64,
    }

    impl DistributedOp for FlakyOp {
        const NAME: &'static str = "test_flaky";
        type Task = FlakyTask;
        type Output = FlakyOutput;

        fn label(task: &FlakyTask) -> String {
            format!("value {}", task.value)
        }

        async fn execute(task: FlakyTask) -> Result<FlakyOutput> {
            match task.fail.as_deref() {
                Some("invalid") => {
                    return Err(Error::InvalidInput(format!("bad value {}", task.value)))
                }
                Some("storage_once") => {
                    if ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err(Error::Storage("transient".into()));
                    }
                }
                Some("panic") => panic!("boom"),
                Some("slow") => {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    SLOW_DONE.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            Ok(FlakyOutput {
                doubled: task.value * 2,
                rows: task.value,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use crate::error::Error;
    use crate::executor::LocalExecutor;
    use crate::progress::{ProgressEvent, RecordingProgress};
    use crate::task::{run_tasks, to_specs, TaskOutcome, TaskSpec};

    #[test]
    fn specs_and_outcomes_round_trip_through_json() {
        let tasks = vec![
            FlakyTask {
                value: 1,
                fail: None,
            },
            FlakyTask {
                value: 2,
                fail: Some("invalid".into()),
            },
        ];
        let specs = to_specs::<FlakyOp>(&tasks).unwrap();
        let text = serde_json::to_string(&specs).unwrap();
        let back: Vec<TaskSpec> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, specs);
        let typed: FlakyTask = serde_json::from_value(back[1].payload.clone()).unwrap();
        assert_eq!(typed, tasks[1]);

        let outcome = TaskOutcome {
            index: 3,
            label: "x".into(),
            result: Err(crate::task::TaskError {
                kind: "storage".into(),
                message: "m".into(),
            }),
            attempts: 2,
            seconds: 0.5,
        };
        let text = serde_json::to_string(&outcome).unwrap();
        assert_eq!(serde_json::from_str::<TaskOutcome>(&text).unwrap(), outcome);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_executor_collects_in_plan_order() {
        let tasks: Vec<_> = (0..20)
            .map(|v| FlakyTask {
                value: v,
                fail: None,
            })
            .collect();
        let progress = RecordingProgress::default();
        let exec = LocalExecutor::new(3);
        let out = run_tasks::<FlakyOp>(&exec, &tasks, &progress)
            .await
            .unwrap();
        assert_eq!(
            out.iter().map(|o| o.doubled).collect::<Vec<_>>(),
            (0..20).map(|v| v * 2).collect::<Vec<_>>()
        );
        let finished = progress
            .events()
            .iter()
            .filter(|e| matches!(e, ProgressEvent::TaskFinished { ok: true, .. }))
            .count();
        assert_eq!(finished, 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_failure_is_listed_and_panics_are_caught() {
        let tasks = vec![
            FlakyTask {
                value: 1,
                fail: Some("invalid".into()),
            },
            FlakyTask {
                value: 2,
                fail: None,
            },
            FlakyTask {
                value: 3,
                fail: Some("panic".into()),
            },
        ];
        let err =
            run_tasks::<FlakyOp>(&LocalExecutor::new(2), &tasks, &crate::progress::NoProgress)
                .await
                .unwrap_err();
        match err {
            Error::TasksFailed {
                total, failures, ..
            } => {
                assert_eq!(total, 3);
                assert_eq!(
                    failures.iter().map(|f| f.task).collect::<Vec<_>>(),
                    vec![0, 2]
                );
                assert_eq!(failures[0].kind, "invalid_input");
                assert_eq!(failures[1].kind, "internal");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retryable_failures_are_retried() {
        let tasks = vec![FlakyTask {
            value: 5,
            fail: Some("storage_once".into()),
        }];
        let progress = RecordingProgress::default();
        let out = run_tasks::<FlakyOp>(&LocalExecutor::new(1), &tasks, &progress)
            .await
            .unwrap();
        assert_eq!(out[0].doubled, 10);
        assert!(progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::TaskRetried { attempt: 2, .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_an_operation_aborts_its_tasks() {
        use std::sync::atomic::Ordering;
        let tasks: Vec<_> = (0..4)
            .map(|v| FlakyTask {
                value: v,
                fail: Some("slow".into()),
            })
            .collect();
        let exec = LocalExecutor::new(4);
        let run = run_tasks::<FlakyOp>(&exec, &tasks, &crate::progress::NoProgress);
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(50), run).await;
        assert!(cancelled.is_err(), "the operation should have been cut off");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            SLOW_DONE.load(Ordering::SeqCst),
            0,
            "tasks kept running after cancel"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_boundary_executes_tasks() {
        let spec = &to_specs::<FlakyOp>(&[FlakyTask {
            value: 21,
            fail: None,
        }])
        .unwrap()[0];
        let out = super::execute_task_json(&serde_json::to_string(spec).unwrap())
            .await
            .unwrap();
        let out: FlakyOutput = serde_json::from_str(&out).unwrap();
        assert_eq!(out.doubled, 42);
        let err =
            super::execute_task_json(r#"{"operation":"nope","index":0,"label":"","payload":null}"#)
                .await
                .unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)));
    }
}
