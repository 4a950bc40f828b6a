//! Running an operation's typed tasks on an executor.

use std::collections::BTreeSet;

use crate::error::{Error, ErrorKind, Result, TaskFailure};
use crate::progress::Progress;
use crate::spine::executor::Executor;
use crate::spine::task::{to_specs, DistributedOp, TaskOutcome};

/// Run typed tasks on an executor and collect typed outputs in plan order.
///
/// If any task failed, returns [`Error::TasksFailed`] listing every failure;
/// the caller must then commit nothing.
pub async fn run_tasks<O: DistributedOp>(
    executor: &dyn Executor,
    tasks: &[O::Task],
    progress: &dyn Progress,
) -> Result<Vec<O::Output>> {
    let specs = to_specs::<O>(tasks)?;
    let total = specs.len();
    let mut outcomes = executor.run(O::NAME, specs, progress).await?;
    check_one_outcome_per_task(executor, &outcomes, total)?;
    outcomes.sort_by_key(|o| o.index);
    let mut outputs = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome.result {
            Ok(value) => match serde_json::from_value::<O::Output>(value) {
                Ok(output) => outputs.push(output),
                Err(e) => failures.push(TaskFailure {
                    task: outcome.index,
                    label: outcome.label,
                    kind: ErrorKind::Internal,
                    message: format!("result could not be decoded: {e}"),
                }),
            },
            Err(err) => failures.push(TaskFailure {
                task: outcome.index,
                label: outcome.label,
                kind: err.kind,
                message: err.message,
            }),
        }
    }
    if failures.is_empty() {
        Ok(outputs)
    } else {
        // One failure of a single-task plan is reported as itself: the
        // caller's error type (and exit code) then says what went wrong.
        if total == 1 && failures.len() == 1 {
            let f = failures.remove(0);
            return Err(Error::from_kind(f.kind, f.message));
        }
        Err(Error::TasksFailed {
            operation: O::NAME.to_string(),
            total,
            failures,
        })
    }
}

/// An executor must hand back exactly one outcome for every task index of
/// the plan: a missing, repeated or unknown index would otherwise commit a
/// wrong set of results.
fn check_one_outcome_per_task(
    executor: &dyn Executor,
    outcomes: &[TaskOutcome],
    total: usize,
) -> Result<()> {
    let seen: BTreeSet<usize> = outcomes.iter().map(|o| o.index).collect();
    if outcomes.len() == total && seen.len() == total && seen.iter().all(|&i| i < total) {
        return Ok(());
    }
    Err(Error::Internal(format!(
        "executor '{}' returned {} results with {} distinct task indexes for {} tasks \
         (each index 0..{} must appear exactly once)",
        executor.describe(),
        outcomes.len(),
        seen.len(),
        total,
        total
    )))
}
