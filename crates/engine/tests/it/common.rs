//! Shared fixtures: deterministic data written to temp dirs.

use std::io::Write;
use std::path::{Path, PathBuf};

use lanceflow::{Location, StorageOptions};

/// Write `rows` JSONL records `{"id", "title", "text", "score"}` starting at `start`.
pub fn write_jsonl(dir: &Path, name: &str, start: usize, rows: usize) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in start..start + rows {
        writeln!(
            f,
            "{}",
            serde_json::json!({"id": i as i64, "title": format!("title {i}"), "text": format!("text of document {i}"), "score": i as f64 * 0.5})
        )
        .unwrap();
    }
    f.flush().unwrap();
    path
}

pub fn local(dir: &Path, name: &str) -> Location {
    Location::resolve(&dir.join(name).to_string_lossy(), &StorageOptions::new()).unwrap()
}

pub async fn latest_version(loc: &Location) -> u64 {
    loc.open(None).await.unwrap().version().version
}

/// `columns` of the dataset at `version` (latest when `None`), in scan order.
pub async fn scan_columns(
    loc: &Location,
    version: Option<u64>,
    columns: &[&str],
) -> Vec<arrow_array::RecordBatch> {
    let at = version.map(lanceflow::VersionSpec::Number);
    let ds = loc.open(at.as_ref()).await.unwrap();
    let mut scan = ds.scan();
    scan.project(columns).unwrap();
    collect(&scan).await
}

/// Every batch a configured scan yields, in scan order.
pub async fn collect(scan: &lance::dataset::scanner::Scanner) -> Vec<arrow_array::RecordBatch> {
    use futures::TryStreamExt;
    scan.try_into_stream()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// The `id` column in scan order (nulls as 0).
pub async fn ids(loc: &Location, version: Option<u64>) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    scan_columns(loc, version, &["id"])
        .await
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .iter()
                .map(|v| v.unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Row count and sum of the `id` column (a checksum of which rows are present).
pub async fn id_sum(loc: &Location, version: Option<u64>) -> (u64, i64) {
    let ids = ids(loc, version).await;
    (ids.len() as u64, ids.iter().sum())
}

pub fn expected_sum(ranges: &[(usize, usize)]) -> (u64, i64) {
    let mut rows = 0;
    let mut sum = 0i64;
    for (start, n) in ranges {
        for i in *start..start + n {
            rows += 1;
            sum += i as i64;
        }
    }
    (rows, sum)
}
