//! What a vector search asks and answers: requests, hits, results, and the
//! column checks and row conversions every search path shares.

use std::sync::Arc;

use arrow_array::{Array, Float32Array, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema, SchemaRef};

use lance::dataset::Dataset;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use crate::index::metric::Metric;

use crate::vectors::Matrix;

/// Row id column lance adds to search results.
pub const ROW_ID: &str = "_rowid";

/// Distance column lance adds to search results.
pub const DISTANCE: &str = "_distance";

/// A (batch) vector search.
#[derive(Debug, Clone)]
pub struct VectorSearchRequest {
    /// Vector column (default: the dataset's only vector column).
    pub column: Option<String>,
    /// One query per row.
    pub queries: Matrix,
    /// Hits per query.
    pub k: usize,
    /// IVF partitions probed per segment (lance's default when `None`).
    pub nprobes: Option<usize>,
    /// Re-rank `k × refine` candidates by exact distance.
    pub refine_factor: Option<u32>,
    /// SQL predicate applied before ranking.
    pub filter: Option<String>,
    /// Columns to return (default: every non-vector column).
    pub columns: Option<Vec<String>>,
    /// Metric; must equal the index's when there is an index.
    pub metric: Option<Metric>,
    /// Use this index (default: the column's vector index, if any).
    pub index: Option<String>,
    /// Search the indexed rows only: rows added since the index was built
    /// or last optimised are left out (lance's `fast_search`; lance-ray's
    /// `include_unindexed=False`). Needs a vector index.
    pub fast_search: bool,
    /// Adaptive probing: at least this many partitions per segment, more
    /// while fewer than `k` rows are found (lance's `minimum_nprobes`;
    /// overrides `nprobes` as the lower bound).
    pub minimum_nprobes: Option<usize>,
    /// Adaptive probing: at most this many partitions per segment (lance's
    /// `maximum_nprobes`; overrides `nprobes` as the upper bound).
    pub maximum_nprobes: Option<usize>,
    /// Keep only rows whose distance lies in this range (lance's
    /// `distance_range`).
    pub distance_range: DistanceRange,
}

/// The distances a search keeps: `lower` inclusive, `upper` exclusive, as
/// lance's `distance_range` (the index's approximate distances are bounded
/// while searching, the exact ones again after a refine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DistanceRange {
    /// Smallest distance kept.
    pub lower: Option<f32>,
    /// Distances at or above this are left out.
    pub upper: Option<f32>,
}

impl DistanceRange {
    /// Whether `distance` is kept.
    pub fn contains(&self, distance: f32) -> bool {
        self.lower.is_none_or(|l| distance >= l) && self.upper.is_none_or(|u| distance < u)
    }

    /// Whether neither bound is set.
    pub fn is_unbounded(&self) -> bool {
        self.lower.is_none() && self.upper.is_none()
    }
}

/// How many IVF partitions a search probes: a fixed count, or lance's
/// adaptive probing between a minimum and a maximum (explicit bounds
/// override `nprobes`, as lance resolves them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probes {
    /// Fixed count (both bounds).
    pub nprobes: Option<usize>,
    /// Lower bound.
    #[serde(default)]
    pub minimum: Option<usize>,
    /// Upper bound.
    #[serde(default)]
    pub maximum: Option<usize>,
}

impl Probes {
    /// The probe count when both bounds resolve to one number; `None` for
    /// adaptive probing (lance's plan decides).
    pub fn fixed(&self) -> Option<usize> {
        match (self.minimum.or(self.nprobes), self.maximum.or(self.nprobes)) {
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        }
    }

    /// Set on a lance scanner (after `nearest`), in lance's order.
    pub(crate) fn configure(&self, scanner: &mut lance::dataset::scanner::Scanner) {
        if let Some(n) = self.nprobes {
            scanner.nprobes(n);
        }
        if let Some(n) = self.minimum {
            scanner.minimum_nprobes(n);
        }
        if let Some(n) = self.maximum {
            scanner.maximum_nprobes(n);
        }
    }
}

impl VectorSearchRequest {
    /// A request for `k` hits of each query, defaults elsewhere.
    pub fn new(queries: Matrix, k: usize) -> Self {
        Self {
            column: None,
            queries,
            k,
            nprobes: None,
            refine_factor: None,
            filter: None,
            columns: None,
            metric: None,
            index: None,
            fast_search: false,
            minimum_nprobes: None,
            maximum_nprobes: None,
            distance_range: DistanceRange::default(),
        }
    }

    /// The request's probe settings.
    pub fn probes(&self) -> Probes {
        Probes {
            nprobes: self.nprobes,
            minimum: self.minimum_nprobes,
            maximum: self.maximum_nprobes,
        }
    }
}

/// One hit: the requested columns, plus row id and distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Lance row id.
    #[serde(rename = "_rowid")]
    pub row_id: u64,
    /// Distance under the search's metric.
    #[serde(rename = "_distance")]
    pub distance: f32,
    /// Requested columns, by name.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Hits of one query, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryHits {
    /// Index of the query in the batch.
    pub query: usize,
    /// Best first.
    pub hits: Vec<Hit>,
}

impl QueryHits {
    /// Whether `other` answers the query as this does: the same distances
    /// position by position (within 1e-5), and the same rows with the same
    /// columns — except among rows tied with the last hit, where `k` cuts a
    /// tie (quantized distances tie often) and either cut is right. `Err`
    /// says what differs.
    pub fn same_answer(&self, other: &QueryHits) -> std::result::Result<(), String> {
        let distances = |q: &QueryHits| q.hits.iter().map(|h| h.distance).collect::<Vec<_>>();
        let (da, db) = (distances(self), distances(other));
        if da.len() != db.len() || da.iter().zip(&db).any(|(x, y)| (x - y).abs() > 1e-5) {
            return Err(format!("query {}: distances {da:?} vs {db:?}", self.query));
        }
        let last = da.last().copied();
        let firm = |q: &QueryHits| {
            q.hits
                .iter()
                .filter(|h| last.is_none_or(|l| (h.distance - l).abs() > 1e-6))
                .map(|h| (h.row_id, h.fields.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (fa, fb) = (firm(self), firm(other));
        if fa != fb {
            return Err(format!("query {}: hits {fa:?} vs {fb:?}", self.query));
        }
        Ok(())
    }
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Per query, in query order.
    pub results: Vec<QueryHits>,
    /// The version searched.
    pub version: u64,
    /// The index used (none: flat scan).
    pub index: Option<String>,
    /// The metric distances are in.
    pub metric: Metric,
    /// Tasks the search ran as (0: in-process).
    pub tasks: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The Arrow types of the requested columns, from the dataset searched
    /// (in-process only: the `table` module builds a typed batch
    /// with them).
    #[serde(skip)]
    pub columns: Option<arrow_schema::SchemaRef>,
}

/// Every name in `columns` is a column of `dataset`; else an error listing
/// the columns there are.
pub(crate) fn check_columns(dataset: &Dataset, columns: &[String]) -> Result<()> {
    let schema = dataset.schema();
    if let Some(c) = columns.iter().find(|c| schema.field(c).is_none()) {
        return Err(Error::NotFound(format!(
            "column '{c}' does not exist; the dataset has: {}",
            schema
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// The Arrow schema of `projection`'s columns of `dataset`, in that order
/// (names that are not top-level columns are left out, as the hits leave
/// them out).
pub(crate) fn projection_schema(dataset: &Dataset, projection: &[String]) -> SchemaRef {
    let full = Schema::from(dataset.schema());
    let fields: Vec<Field> = projection
        .iter()
        .filter_map(|name| full.field_with_name(name).ok().cloned())
        .collect();
    Arc::new(Schema::new(fields))
}

/// Batch rows → hits (row id and distance from lance's columns).
pub(crate) fn score_columns(batch: &RecordBatch) -> Result<(&UInt64Array, &Float32Array)> {
    let row_ids = batch
        .column_by_name(ROW_ID)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| Error::Internal("search result without _rowid".into()))?;
    let distances = batch
        .column_by_name(DISTANCE)
        .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
        .ok_or_else(|| Error::Internal("search result without _distance".into()))?;
    Ok((row_ids, distances))
}

pub(crate) fn batch_to_hits(batch: &RecordBatch, projection: &[String]) -> Result<Vec<Hit>> {
    let (row_ids, distances) = score_columns(batch)?;
    let rows = rows_as_json(batch, projection)?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, fields)| Hit {
            row_id: row_ids.value(i),
            distance: distances.value(i),
            fields,
        })
        .collect())
}

/// The named columns of each row as JSON objects.
pub fn rows_as_json(
    batch: &RecordBatch,
    columns: &[String],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let indices: Vec<usize> = columns
        .iter()
        .filter_map(|c| batch.schema().index_of(c).ok())
        .collect();
    let projected = batch
        .project(&indices)
        .map_err(|e| Error::Internal(format!("project result: {e}")))?;
    if projected.num_columns() == 0 {
        return Ok(vec![serde_json::Map::new(); batch.num_rows()]);
    }
    let mut buf = Vec::new();
    {
        let mut writer = arrow_json::ArrayWriter::new(&mut buf);
        writer
            .write(&projected)
            .map_err(|e| Error::Internal(format!("result to JSON: {e}")))?;
        writer
            .finish()
            .map_err(|e| Error::Internal(format!("result to JSON: {e}")))?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&buf)?;
    Ok(rows)
}
