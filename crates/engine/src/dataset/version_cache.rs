//! Answers about one dataset version, computed once per process.
//!
//! A committed version never changes, so anything derived from it alone (which
//! index serves a column, whether a search can take the direct path) can be
//! kept for as long as the process runs. A searcher asks the same questions of
//! the same pinned version on every query, and answering them (listing the
//! indexes, opening one) costs about as much as a small query.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{LazyLock, Mutex};

use lance::dataset::Dataset;

use crate::error::Result;

/// A version, named by dataset URI, version number and commit time (a
/// dataset deleted and written again at the same URI restarts its numbers),
/// plus what was asked about it.
type Key<K> = (String, u64, u128, K);

/// Per-version answers of type `V` to questions of type `K`, for a `static`.
/// Holds at most `capacity` answers: a long-running process that moves
/// through many versions starts over when it is full.
pub(crate) struct VersionCache<K, V> {
    entries: LazyLock<Mutex<HashMap<Key<K>, V>>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> VersionCache<K, V> {
    pub(crate) const fn new(capacity: usize) -> Self {
        Self {
            entries: LazyLock::new(Default::default),
            capacity,
        }
    }

    /// The answer to `question` about `dataset`'s version: the one kept, or
    /// `answer()`'s, kept when it succeeds (errors are not kept).
    pub(crate) async fn get_or_compute<F, Fut>(
        &self,
        dataset: &Dataset,
        question: K,
        answer: F,
    ) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let key = (
            dataset.uri().to_string(),
            dataset.version().version,
            dataset.manifest().timestamp_nanos,
            question,
        );
        // A poisoned lock only means another thread panicked while holding
        // it; the cache is then skipped, never trusted half-written.
        if let Some(kept) = self.entries.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(kept);
        }
        let value = answer().await?;
        if let Ok(mut m) = self.entries.lock() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(key, value.clone());
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, RecordBatch, RecordBatchIterator};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    async fn dataset(uri: &str, rows: i32) -> Dataset {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from_iter_values(0..rows))],
        )
        .unwrap();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let params = lance::dataset::WriteParams {
            mode: lance::dataset::WriteMode::Overwrite,
            ..Default::default()
        };
        Dataset::write(reader, uri, Some(params)).await.unwrap()
    }

    #[tokio::test]
    async fn answers_once_per_version_and_question_and_never_keeps_errors() {
        static CACHE: VersionCache<&'static str, usize> = VersionCache::new(3);
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("d.lance");
        let uri = uri.to_str().unwrap();
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        async fn ask(ds: &Dataset, question: &'static str) -> Result<usize> {
            CACHE
                .get_or_compute(ds, question, || async {
                    CALLS.fetch_add(1, Ordering::SeqCst);
                    Ok(ds.count_rows(None).await.unwrap())
                })
                .await
        }
        let calls = &CALLS;
        let v1 = dataset(uri, 5).await;
        assert_eq!(ask(&v1, "rows").await.unwrap(), 5);
        assert_eq!(ask(&v1, "rows").await.unwrap(), 5);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "asked twice, answered once"
        );
        // Another question about the same version is answered apart.
        assert_eq!(ask(&v1, "other").await.unwrap(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A new version (same URI) is a new key.
        let v2 = dataset(uri, 7).await;
        assert_eq!(ask(&v2, "rows").await.unwrap(), 7);
        assert_eq!(
            ask(&v1, "rows").await.unwrap(),
            5,
            "the old version keeps its answer"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Errors are returned, not kept.
        let failing = CACHE
            .get_or_compute(&v2, "fails", || async {
                Err(crate::error::Error::Internal("boom".into()))
            })
            .await;
        assert!(failing.is_err());
        assert_eq!(ask(&v2, "fails").await.unwrap(), 7);
        // The cache was full (3 answers) when "fails" was answered: it
        // started over, so v1's answer is computed again.
        assert_eq!(ask(&v2, "more").await.unwrap(), 7);
        let before = calls.load(Ordering::SeqCst);
        assert_eq!(ask(&v1, "rows").await.unwrap(), 5);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            before + 1,
            "recomputed after the clear"
        );
    }
}
