//! Commits whose outcome is known. Every transaction lanceflow commits
//! itself carries a token in its transaction properties. Lance already reads
//! the manifest back when a store's answer to a conditional write is lost;
//! when the commit call still fails (the read-back failed too, or the store
//! stayed unreachable), the versions written since the transaction's read
//! version are read back and the token decides: found, the commit landed and
//! the caller gets that version; not found, the commit did not land and the
//! dataset is as it was. The outcome is never guessed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lance::dataset::transaction::{Operation, TransactionBuilder};
use lance::dataset::write::CommitBuilder;
use lance::Dataset;

use crate::error::{Error, Result};
use crate::storage::{Location, VersionSpec};

/// The transaction property that names a lanceflow commit.
pub const COMMIT_TOKEN: &str = "lanceflow.commit";

/// The transaction property holding a caller's idempotency key (e.g.
/// `ingest --idempotency-key`): a job re-run with the same key finds the
/// version its first run committed instead of writing its rows again.
pub const IDEMPOTENCY_KEY: &str = "lanceflow.idempotency_key";

/// How many versions past the read version a read-back looks at (other
/// writers' commits may have landed in between); also how far back an
/// idempotency key is remembered.
pub const LOOKBACK: u64 = 256;

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// Check an idempotency key before any work: 1–256 printable ASCII
/// characters.
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidInput(format!(
            "--idempotency-key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters \
             without spaces (e.g. the job's name and date: daily-2026-12-04)"
        )));
    }
    Ok(())
}

/// Commit `operation` (planned against `read_version`) with `builder`; the
/// dataset as committed. `what` names the commit in errors; `key`, when
/// given, is stored as the transaction's idempotency key.
pub(crate) async fn commit(
    location: &Location,
    builder: CommitBuilder<'_>,
    read_version: u64,
    operation: Operation,
    what: &str,
    key: Option<&str>,
) -> Result<Dataset> {
    let token = uuid::Uuid::new_v4().to_string();
    let mut properties = HashMap::from([(COMMIT_TOKEN.to_string(), token.clone())]);
    if let Some(key) = key {
        properties.insert(IDEMPOTENCY_KEY.to_string(), key.to_string());
    }
    let transaction = TransactionBuilder::new(read_version, operation)
        .transaction_properties(Some(Arc::new(properties)))
        .build();
    let err = match builder.execute(transaction).await {
        Ok(dataset) => return Ok(dataset),
        Err(err) => location.lance_error(what, err),
    };
    // Read the versions back, a few times if the store is still failing.
    let mut last = None;
    for pause in [0u64, 250, 1000, 3000] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        match find(location, read_version, COMMIT_TOKEN, &token).await {
            Ok(Some(dataset)) => {
                tracing::warn!(
                    version = dataset.version().version,
                    "{what}: the commit call failed ({err}) but the commit landed"
                );
                return Ok(dataset);
            }
            Ok(None) => return Err(err),
            Err(check) => last = Some(check),
        }
    }
    let check = last.map_or_else(String::new, |e| e.to_string());
    Err(Error::Storage(format!(
        "{what}: the outcome of the commit is unknown ({err}); reading the versions back \
         failed too ({check}). Once the store answers, `lanceflow versions` lists the \
         commits: one whose transaction property {COMMIT_TOKEN} is {token} is this one"
    )))
}

/// The version whose transaction carries `token`, if one landed after
/// `read_version`.
#[cfg(test)]
async fn landed(location: &Location, read_version: u64, token: &str) -> Result<Option<Dataset>> {
    find(location, read_version, COMMIT_TOKEN, token).await
}

/// The version committed with idempotency key `key` among the latest
/// [`LOOKBACK`] versions, if any.
pub async fn committed_with_key(location: &Location, key: &str) -> Result<Option<Dataset>> {
    find(location, 0, IDEMPOTENCY_KEY, key).await
}

/// The newest version after `read_version` (and among the latest
/// [`LOOKBACK`]) whose transaction property `name` is `value`.
async fn find(
    location: &Location,
    read_version: u64,
    name: &str,
    value: &str,
) -> Result<Option<Dataset>> {
    let latest = match location.open(None).await {
        Ok(dataset) => dataset,
        // No dataset: a first commit that did not land.
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let newest = latest.version().version;
    let oldest = read_version.max(newest.saturating_sub(LOOKBACK)) + 1;
    for version in (oldest..=newest).rev() {
        let transaction = latest
            .read_transaction_by_version(version)
            .await
            .map_err(|e| location.lance_error("read a transaction back", e))?;
        let ours = transaction
            .and_then(|t| t.transaction_properties)
            .is_some_and(|p| p.get(name).map(String::as_str) == Some(value));
        if ours {
            return location
                .open(Some(&VersionSpec::Number(version)))
                .await
                .map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch, RecordBatchIterator};
    use arrow_schema::{DataType, Field, Schema};
    use lance::dataset::{InsertBuilder, WriteParams};

    #[tokio::test]
    async fn a_landed_commit_is_found_by_its_token_and_only_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("t.lance").to_string_lossy().to_string();
        let location = Location::resolve(&uri, &Default::default()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = |from: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(from..from + 10))],
            )
            .unwrap()
        };
        let reader = RecordBatchIterator::new([Ok(batch(0))], schema.clone());
        Dataset::write(reader, location.uri(), Some(WriteParams::default()))
            .await
            .unwrap();
        let dataset = Arc::new(location.open(None).await.unwrap());
        let params = WriteParams {
            mode: lance::dataset::WriteMode::Append,
            ..Default::default()
        };
        let fragments = InsertBuilder::new(dataset.clone())
            .with_params(&params)
            .execute_uncommitted(vec![batch(10)])
            .await
            .unwrap()
            .operation;
        let committed = commit(
            &location,
            CommitBuilder::new(dataset.clone()),
            1,
            fragments,
            "commit a test append",
            Some("job-1"),
        )
        .await
        .unwrap();
        assert_eq!(committed.version().version, 2);
        let transaction = committed.read_transaction().await.unwrap().unwrap();
        let token = transaction.transaction_properties.unwrap()[COMMIT_TOKEN].clone();

        let found = landed(&location, 1, &token).await.unwrap().unwrap();
        assert_eq!(found.version().version, 2);
        assert!(landed(&location, 1, "another").await.unwrap().is_none());
        // Looking only after the version it landed in finds nothing.
        assert!(landed(&location, 2, &token).await.unwrap().is_none());
        let none = dir.path().join("none.lance").to_string_lossy().to_string();
        let missing = Location::resolve(&none, &Default::default()).unwrap();
        assert!(landed(&missing, 0, &token).await.unwrap().is_none());
        // The idempotency key finds the same version; another key nothing.
        let keyed = committed_with_key(&location, "job-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keyed.version().version, 2);
        assert!(committed_with_key(&location, "job-2")
            .await
            .unwrap()
            .is_none());
        assert!(check_idempotency_key("daily-2026-12-04").is_ok());
        for bad in ["", "with space", "é", &"k".repeat(MAX_IDEMPOTENCY_KEY + 1)] {
            assert!(check_idempotency_key(bad).is_err(), "{bad}");
        }
    }
}
