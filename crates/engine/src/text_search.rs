//! Full-text search and hybrid (vector + full-text) search with rank fusion.
//!
//! A hybrid search pins one version, runs the vector leg and the text leg
//! **concurrently** against it, and fuses the two rankings:
//! - RRF: `score = Σ w_leg / (rrf_k + rank_leg)`, ranks from 1, a row missing
//!   from a leg gets nothing from it;
//! - linear: each leg's scores min-max normalised to [0, 1] (distances
//!   inverted: nearest = 1), then `Σ w_leg · norm_leg`.
//!
//! Ties break by row id (ascending). Filters apply to both legs before
//! ranking (prefilter), so both rank the same candidate rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Array, Float32Array, RecordBatch, UInt64Array};
use arrow_schema::DataType;
use lance::dataset::Dataset;
use lance::index::{DatasetIndexExt, DatasetIndexInternalExt};
use lance_index::metrics::NoOpMetricsCollector;
use lance_index::prefilter::NoFilter;
use lance_index::scalar::inverted::query::{
    try_collect_query_tokens, BooleanQuery, FtsQuery, FtsSearchParams, Occur, Operator, PhraseQuery,
};
use lance_index::scalar::inverted::InvertedIndex;
use lance_index::scalar::FullTextSearchQuery;
use lance_table::system_index::frag_reuse::FRAG_REUSE_INDEX_NAME;
use serde::{Deserialize, Serialize};

use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::search::{
    check_columns, covers_each_fragment_once, rows_as_json, search_in, VectorSearchRequest, ROW_ID,
};
use crate::storage::{Location, VersionSpec};
use crate::version_cache::VersionCache;

/// Score column lance adds to full-text results.
pub const SCORE: &str = "_score";

/// A full-text search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSearchRequest {
    /// The query text.
    pub query: String,
    /// Hits to return.
    pub k: usize,
    /// Indexed text columns to search (default: every column with a
    /// full-text index).
    pub search_columns: Option<Vec<String>>,
    /// Match the words as one phrase (needs an index built with positions).
    pub phrase: bool,
    /// SQL predicate applied before ranking.
    pub filter: Option<String>,
    /// Columns to return (default: every non-vector column).
    pub columns: Option<Vec<String>>,
}

impl TextSearchRequest {
    /// `k` hits for `query`, defaults elsewhere.
    pub fn new(query: impl Into<String>, k: usize) -> Self {
        Self {
            query: query.into(),
            k,
            search_columns: None,
            phrase: false,
            filter: None,
            columns: None,
        }
    }
}

/// One full-text hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextHit {
    /// Lance row id.
    #[serde(rename = "_rowid")]
    pub row_id: u64,
    /// BM25 score (higher is better).
    #[serde(rename = "_score")]
    pub score: f32,
    /// Requested columns, by name.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The answer to a full-text search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextResults {
    /// Best first.
    pub hits: Vec<TextHit>,
    /// Columns searched.
    pub searched: Vec<String>,
    /// The version searched.
    pub version: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Columns with a full-text (INVERTED) index.
pub async fn fts_columns(location: &Location, dataset: &Dataset) -> Result<Vec<String>> {
    let indices = dataset
        .load_indices()
        .await
        .map_err(|e| location.lance_error("list indices", e))?;
    let mut out: Vec<String> = indices
        .iter()
        .filter(|i| is_inverted(i))
        .filter_map(|i| i.fields.first())
        .filter_map(|id| dataset.schema().field_by_id(*id))
        .map(|f| f.name.clone())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Output columns: the requested ones (checked), else every non-vector one.
fn projection(dataset: &Dataset, columns: &Option<Vec<String>>) -> Result<Vec<String>> {
    let schema = dataset.schema();
    match columns {
        Some(cols) => {
            check_columns(dataset, cols)?;
            Ok(cols.clone())
        }
        None => Ok(schema
            .fields
            .iter()
            .filter(|f| !matches!(f.data_type(), DataType::FixedSizeList(_, _)))
            .map(|f| f.name.clone())
            .collect()),
    }
}

/// The columns a text search covers, checked against the FTS indexes.
async fn searched_columns(
    location: &Location,
    dataset: &Dataset,
    wanted: &Option<Vec<String>>,
) -> Result<Vec<String>> {
    let indexed = fts_columns(location, dataset).await?;
    let hint = |c: &str| {
        format!(
            "build one with `lanceflow index scalar {} --column {c} --type INVERTED`",
            location.uri()
        )
    };
    match wanted {
        Some(cols) => {
            ensure_invalid!(!cols.is_empty(), "--search-columns names no column");
            for c in cols {
                if dataset.schema().field(c).is_none() {
                    return Err(Error::NotFound(format!(
                        "column '{c}' does not exist in '{}'",
                        location.uri()
                    )));
                }
                if !indexed.contains(c) {
                    return Err(Error::NotFound(format!(
                        "column '{c}' has no full-text index; {}",
                        hint(c)
                    )));
                }
            }
            Ok(cols.clone())
        }
        None if indexed.is_empty() => Err(Error::NotFound(format!(
            "'{}' has no full-text index; {}",
            location.uri(),
            hint("text")
        ))),
        None => Ok(indexed),
    }
}

/// The query text, trimmed; an error when there is nothing to search for.
pub fn check_query(text: &str) -> Result<&str> {
    let query = text.trim();
    ensure_invalid!(
        !query.is_empty(),
        "the query text is empty; give some words to search for"
    );
    Ok(query)
}

fn fts_query(request: &TextSearchRequest, columns: &[String]) -> Result<FullTextSearchQuery> {
    let query = check_query(&request.query)?;
    let q = if request.phrase {
        let phrases: Vec<(Occur, FtsQuery)> = columns
            .iter()
            .map(|c| {
                (
                    Occur::Should,
                    PhraseQuery::new(query.to_string())
                        .with_column(Some(c.clone()))
                        .into(),
                )
            })
            .collect();
        match phrases.len() {
            1 => FullTextSearchQuery::new_query(
                phrases
                    .into_iter()
                    .map(|p| p.1)
                    .next()
                    .ok_or_else(|| Error::Internal("no phrase".into()))?,
            ),
            _ => FullTextSearchQuery::new_query(BooleanQuery::new(phrases).into()),
        }
    } else {
        FullTextSearchQuery::new(query.to_string())
            .with_columns(columns)
            .map_err(|e| Error::InvalidInput(format!("full-text query: {e}")))?
    };
    Ok(q.limit(Some(request.k as i64)))
}

/// Direct-path lookups by column: the one segment of the column's full-text
/// index, or `None` where only lance's plan searches it right.
static FTS_LOOKUPS: VersionCache<String, Option<uuid::Uuid>> = VersionCache::new(256);

/// The segment of `column`'s full-text index that the direct path can
/// search: the column holds plain strings, it has one full-text index of one
/// segment, which covers every fragment, and no row is deleted or overlaid.
async fn direct_fts_segment(
    location: &Location,
    dataset: &Dataset,
    column: &str,
) -> Result<Option<uuid::Uuid>> {
    FTS_LOOKUPS
        .get_or_compute(dataset, column.to_string(), || {
            find_direct_fts_segment(location, dataset, column)
        })
        .await
}

async fn find_direct_fts_segment(
    location: &Location,
    dataset: &Dataset,
    column: &str,
) -> Result<Option<uuid::Uuid>> {
    let found = 'found: {
        let Some(field) = dataset.schema().field(column) else {
            break 'found None;
        };
        if !matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
            break 'found None;
        }
        let indices = dataset
            .load_indices()
            .await
            .map_err(|e| location.lance_error("list indices", e))?;
        if indices.iter().any(|i| i.name == FRAG_REUSE_INDEX_NAME) {
            break 'found None;
        }
        let segments: Vec<_> = indices
            .iter()
            .filter(|i| i.fields.first() == Some(&field.id) && is_inverted(i))
            .collect();
        // One index of one segment (two indexes on a column: lance picks).
        let [only] = segments.as_slice() else {
            break 'found None;
        };
        let frags = only
            .fragment_bitmap
            .as_ref()
            .map(|b| b.iter().collect())
            .unwrap_or_default();
        covers_each_fragment_once(dataset, &[(only.uuid.to_string(), frags)]).then_some(only.uuid)
    };
    Ok(found)
}

fn is_inverted(index: &lance_table::format::IndexMetadata) -> bool {
    index
        .index_details
        .as_ref()
        .is_some_and(|d| d.type_url.ends_with("InvertedIndexDetails"))
}

/// The fast path of a full-text search without filter or phrase: each
/// searched column's inverted index scores the query itself (BM25, its own
/// top `k`), and a row's score is its best over the columns — what lance's
/// plan for a multi-column match does (per-column bounded top k, the maximum
/// per row, the top k of those), without planning per query. `None` when a
/// column needs lance's plan (see [`direct_fts_segment`]). A test holds it
/// to lance's plan.
async fn direct_text_search(
    location: &Location,
    dataset: &Dataset,
    columns: &[String],
    query: &str,
    k: usize,
) -> Result<Option<Vec<(u64, f32)>>> {
    let mut segments = Vec::with_capacity(columns.len());
    for column in columns {
        match direct_fts_segment(location, dataset, column).await? {
            Some(uuid) => segments.push(uuid),
            None => return Ok(None),
        }
    }
    let mut best: HashMap<u64, f32> = HashMap::new();
    for (column, uuid) in columns.iter().zip(&segments) {
        let index = dataset
            .open_scalar_index(column, uuid, &NoOpMetricsCollector)
            .await
            .map_err(|e| location.lance_error("open the full-text index", e))?;
        let Some(inverted) =
            lance_index::Index::as_any(index.as_ref()).downcast_ref::<InvertedIndex>()
        else {
            return Ok(None);
        };
        let mut tokenizer = inverted.tokenizer();
        let tokens = try_collect_query_tokens(query, &mut tokenizer)
            .map_err(|e| Error::InvalidInput(format!("full-text query: {e}")))?;
        let params = FtsSearchParams::new().with_limit(Some(k));
        let (row_ids, scores) = inverted
            .bm25_search(
                Arc::new(tokens),
                Arc::new(params),
                Operator::Or,
                Arc::new(NoFilter),
                Arc::new(NoOpMetricsCollector),
                None,
            )
            .await
            .map_err(|e| location.lance_error("full-text search", e))?;
        for (row_id, score) in row_ids.into_iter().zip(scores) {
            let slot = best.entry(row_id).or_insert(score);
            if score > *slot {
                *slot = score;
            }
        }
    }
    let mut hits: Vec<(u64, f32)> = best.into_iter().collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    Ok(Some(hits))
}

/// Full-text search of a pinned dataset.
pub(crate) async fn search_text_in(
    location: &Location,
    dataset: &Dataset,
    request: &TextSearchRequest,
) -> Result<TextResults> {
    search_text_in_with(location, dataset, request, false).await
}

/// `planned_only`: never take the direct path (tests comparing the two).
async fn search_text_in_with(
    location: &Location,
    dataset: &Dataset,
    request: &TextSearchRequest,
    planned_only: bool,
) -> Result<TextResults> {
    let started = Instant::now();
    ensure_invalid!(request.k > 0, "--k must be at least 1");
    let searched = searched_columns(location, dataset, &request.search_columns).await?;
    let query = fts_query(request, &searched)?;
    let projection = projection(dataset, &request.columns)?;
    if !planned_only && request.filter.is_none() && !request.phrase {
        let text = check_query(&request.query)?;
        if let Some(found) =
            direct_text_search(location, dataset, &searched, text, request.k).await?
        {
            let ids: Vec<u64> = found.iter().map(|(id, _)| *id).collect();
            let fields = if projection.is_empty() {
                vec![serde_json::Map::new(); ids.len()]
            } else {
                fetch_rows(location, dataset, &ids, &projection).await?
            };
            return Ok(TextResults {
                hits: found
                    .into_iter()
                    .zip(fields)
                    .map(|((row_id, score), fields)| TextHit {
                        row_id,
                        score,
                        fields,
                    })
                    .collect(),
                searched,
                version: dataset.version().version,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
    let err = |e: lance::Error| {
        let text = e.to_string();
        if text.contains("position") {
            Error::InvalidInput(format!(
                "phrase search needs an index with positions; rebuild it with `lanceflow index \
                 scalar {} --column C --type INVERTED --with-position --replace`",
                location.uri()
            ))
        } else {
            location.lance_error("full-text search", e)
        }
    };
    let mut scanner = dataset.scan();
    let mut columns = projection.clone();
    columns.push(SCORE.to_string());
    scanner.project(&columns).map_err(err)?;
    scanner.full_text_search(query).map_err(err)?;
    if let Some(filter) = &request.filter {
        scanner.filter(filter).map_err(err)?;
        scanner.prefilter(true);
    }
    scanner.with_row_id();
    scanner.limit(Some(request.k as i64), None).map_err(err)?;
    let batch = scanner.try_into_batch().await.map_err(err)?;
    let mut hits = text_hits(&batch, &projection)?;
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row_id.cmp(&b.row_id)));
    hits.truncate(request.k);
    Ok(TextResults {
        hits,
        searched,
        version: dataset.version().version,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn text_hits(batch: &RecordBatch, projection: &[String]) -> Result<Vec<TextHit>> {
    let row_ids = batch
        .column_by_name(ROW_ID)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| Error::Internal("full-text result without _rowid".into()))?;
    let scores = batch
        .column_by_name(SCORE)
        .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
        .ok_or_else(|| Error::Internal("full-text result without _score".into()))?;
    Ok(rows_as_json(batch, projection)?
        .into_iter()
        .enumerate()
        .map(|(i, fields)| TextHit {
            row_id: row_ids.value(i),
            score: if scores.is_valid(i) {
                scores.value(i)
            } else {
                0.0
            },
            fields,
        })
        .collect())
}

/// Full-text search at the latest version, or at `at`.
pub async fn search_text(
    location: &Location,
    at: Option<&VersionSpec>,
    request: &TextSearchRequest,
) -> Result<TextResults> {
    let dataset = location.open(at).await?;
    search_text_in(location, &dataset, request).await
}

/// How two rankings are fused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion.
    Rrf,
    /// Weighted sum of min-max normalised scores.
    Linear,
}

impl Fusion {
    /// Parse `rrf` or `linear`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "rrf" => Ok(Fusion::Rrf),
            "linear" => Ok(Fusion::Linear),
            other => bail_invalid!("unknown fusion '{other}'; use rrf or linear"),
        }
    }
}

/// One ranked leg: (row id, leg score) best first. For the vector leg the
/// score is a distance (smaller is better), for the text leg BM25.
#[derive(Debug, Clone, Default)]
pub struct Leg {
    /// Rows, best first.
    pub rows: Vec<(u64, f32)>,
    /// Whether a smaller score is better (distances).
    pub lower_is_better: bool,
}

/// A fused row: its fused score and each leg's (1-based rank, score).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fused {
    /// Lance row id.
    pub row_id: u64,
    /// Fused score (higher is better).
    pub score: f64,
    /// Rank and score in each leg (None: not in that leg).
    pub legs: Vec<Option<(usize, f32)>>,
}

/// Fuse rankings into the top `k`. `weights` has one weight per leg;
/// `rrf_k` is RRF's constant. A row repeated within a leg counts once, at
/// its best rank.
pub fn fuse(
    legs: &[Leg],
    weights: &[f64],
    fusion: Fusion,
    rrf_k: f64,
    k: usize,
) -> Result<Vec<Fused>> {
    ensure_invalid!(
        weights.len() == legs.len(),
        "{} weights given for {} legs; give one weight per leg (vector, text)",
        weights.len(),
        legs.len()
    );
    ensure_invalid!(
        weights.iter().all(|w| w.is_finite() && *w >= 0.0),
        "weights must be non-negative numbers"
    );
    ensure_invalid!(
        rrf_k >= 0.0 && rrf_k.is_finite(),
        "--rrf-k must be a non-negative number"
    );
    let mut rows: BTreeMap<u64, Fused> = BTreeMap::new();
    for (leg_no, leg) in legs.iter().enumerate() {
        let (lo, hi) = leg
            .rows
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), r| {
                (lo.min(r.1), hi.max(r.1))
            });
        let mut rank = 0;
        for &(row, score) in &leg.rows {
            let entry = rows.entry(row).or_insert_with(|| Fused {
                row_id: row,
                score: 0.0,
                legs: vec![None; legs.len()],
            });
            if entry.legs[leg_no].is_some() {
                continue; // repeated within this leg: keep the best rank
            }
            rank += 1;
            entry.legs[leg_no] = Some((rank, score));
            entry.score += weights[leg_no]
                * match fusion {
                    Fusion::Rrf => 1.0 / (rrf_k + rank as f64),
                    Fusion::Linear => {
                        let span = f64::from(hi) - f64::from(lo);
                        if span <= 0.0 {
                            1.0
                        } else if leg.lower_is_better {
                            (f64::from(hi) - f64::from(score)) / span
                        } else {
                            (f64::from(score) - f64::from(lo)) / span
                        }
                    }
                };
        }
    }
    let mut fused: Vec<Fused> = rows.into_values().collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row_id.cmp(&b.row_id)));
    fused.truncate(k);
    Ok(fused)
}

/// A hybrid search: one query as text and as a vector.
#[derive(Debug, Clone)]
pub struct HybridRequest {
    /// The text leg (its `k` is the text leg's depth).
    pub text: TextSearchRequest,
    /// The vector leg (one query vector; its `k` is the vector leg's depth).
    pub vector: VectorSearchRequest,
    /// Fused hits to return.
    pub k: usize,
    /// Fusion method.
    pub fusion: Fusion,
    /// RRF constant.
    pub rrf_k: f64,
    /// Weights of the vector and text legs.
    pub weights: Vec<f64>,
}

/// One fused hit with each leg's rank and score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridHit {
    /// Lance row id.
    #[serde(rename = "_rowid")]
    pub row_id: u64,
    /// Fused score (higher is better).
    #[serde(rename = "_score")]
    pub score: f64,
    /// Rank in the vector leg (1-based).
    pub vector_rank: Option<usize>,
    /// Distance in the vector leg.
    #[serde(rename = "_distance")]
    pub distance: Option<f32>,
    /// Rank in the text leg (1-based).
    pub text_rank: Option<usize>,
    /// BM25 score in the text leg.
    pub text_score: Option<f32>,
    /// Requested columns, by name.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The answer to a hybrid search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridResults {
    /// Best first.
    pub hits: Vec<HybridHit>,
    /// The version both legs searched.
    pub version: u64,
    /// Seconds of the vector leg.
    pub vector_seconds: f64,
    /// Seconds of the text leg.
    pub text_seconds: f64,
    /// Wall-clock seconds, both legs and fusion.
    pub seconds: f64,
}

/// Hybrid search of one pinned version (the latest, or `at`).
pub async fn search_hybrid(
    location: &Location,
    at: Option<&VersionSpec>,
    request: &HybridRequest,
) -> Result<HybridResults> {
    let dataset = Arc::new(location.open(at).await?);
    search_hybrid_in(location, dataset, request).await
}

/// Hybrid search of an opened dataset.
pub async fn search_hybrid_in(
    location: &Location,
    dataset: Arc<Dataset>,
    request: &HybridRequest,
) -> Result<HybridResults> {
    let started = Instant::now();
    ensure_invalid!(request.k > 0, "--k must be at least 1");
    ensure_invalid!(
        request.vector.queries.rows() == 1,
        "a hybrid search takes one query"
    );
    // Checks that need no search first, so a bad request fails fast.
    check_query(&request.text.query)?;
    if request.weights.len() != 2 {
        bail_invalid!(
            "{} weights given; give two: the vector leg's and the text leg's (e.g. 0.7,0.3)",
            request.weights.len()
        );
    }
    let mut vector = request.vector.clone();
    vector.columns = Some(Vec::new());
    vector.filter = request.text.filter.clone();
    let mut text = request.text.clone();
    text.columns = Some(Vec::new());
    let (vector_leg, text_leg) = tokio::join!(
        async {
            let t = Instant::now();
            let r = search_in(location, dataset.clone(), &vector, 1).await;
            (r, t.elapsed().as_secs_f64())
        },
        async {
            let t = Instant::now();
            let r = search_text_in(location, &dataset, &text).await;
            (r, t.elapsed().as_secs_f64())
        }
    );
    let (vector_results, vector_seconds) = (
        vector_leg.0.map_err(|e| leg_error("vector", e))?,
        vector_leg.1,
    );
    let (text_results, text_seconds) = (text_leg.0.map_err(|e| leg_error("text", e))?, text_leg.1);
    let legs = [
        Leg {
            rows: vector_results
                .results
                .first()
                .map(|q| q.hits.iter().map(|h| (h.row_id, h.distance)).collect())
                .unwrap_or_default(),
            lower_is_better: true,
        },
        Leg {
            rows: text_results
                .hits
                .iter()
                .map(|h| (h.row_id, h.score))
                .collect(),
            lower_is_better: false,
        },
    ];
    let fused = fuse(
        &legs,
        &request.weights,
        request.fusion,
        request.rrf_k,
        request.k,
    )?;
    let projection = projection(&dataset, &request.text.columns)?;
    let ids: Vec<u64> = fused.iter().map(|f| f.row_id).collect();
    let fields = fetch_rows(location, &dataset, &ids, &projection).await?;
    let hits = fused
        .into_iter()
        .zip(fields)
        .map(|(f, fields)| HybridHit {
            row_id: f.row_id,
            score: f.score,
            vector_rank: f.legs[0].map(|l| l.0),
            distance: f.legs[0].map(|l| l.1),
            text_rank: f.legs[1].map(|l| l.0),
            text_score: f.legs[1].map(|l| l.1),
            fields,
        })
        .collect();
    Ok(HybridResults {
        hits,
        version: dataset.version().version,
        vector_seconds,
        text_seconds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn leg_error(leg: &str, e: Error) -> Error {
    match e {
        Error::NotFound(m) if leg == "vector" && m.contains("vector") => Error::NotFound(format!(
            "hybrid search needs a vector column (and ideally a vector index): {m}"
        )),
        other => other,
    }
}

/// The `columns` of rows by row id, in the order of `ids`.
async fn fetch_rows(
    location: &Location,
    dataset: &Dataset,
    ids: &[u64],
    columns: &[String],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let projection = dataset
        .schema()
        .project(columns)
        .map_err(|e| location.lance_error("project columns", e))?;
    let batch = dataset
        .take_rows(ids, projection)
        .await
        .map_err(|e| location.lance_error("fetch rows", e))?;
    rows_as_json(&batch, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(rows: &[(u64, f32)], lower: bool) -> Leg {
        Leg {
            rows: rows.to_vec(),
            lower_is_better: lower,
        }
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_and_breaks_ties_by_row_id() {
        let v = leg(&[(10, 0.1), (20, 0.2), (30, 0.3)], true);
        let t = leg(&[(30, 9.0), (40, 5.0), (10, 1.0)], false);
        let f = fuse(&[v, t], &[1.0, 1.0], Fusion::Rrf, 60.0, 10).unwrap();
        let ids: Vec<u64> = f.iter().map(|x| x.row_id).collect();
        // 10: 1/61 + 1/63; 30: 1/63 + 1/61 (a tie: row id decides); 20 and
        // 40: 1/62 each (a tie).
        assert_eq!(ids, vec![10, 30, 20, 40]);
        assert!((f[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);
        assert_eq!(f[0].legs, vec![Some((1, 0.1)), Some((3, 1.0))]);
        assert_eq!(f[3].legs, vec![None, Some((2, 5.0))]);
    }

    #[test]
    fn one_empty_leg_keeps_the_other_ranking() {
        let v = leg(&[], true);
        let t = leg(&[(5, 3.0), (2, 2.0), (9, 1.0)], false);
        let f = fuse(&[v, t], &[0.7, 0.3], Fusion::Rrf, 60.0, 2).unwrap();
        assert_eq!(f.iter().map(|x| x.row_id).collect::<Vec<_>>(), vec![5, 2]);
        assert!(f.iter().all(|x| x.legs[0].is_none()));
        let f = fuse(
            &[leg(&[], true), leg(&[], false)],
            &[1.0, 1.0],
            Fusion::Linear,
            60.0,
            5,
        )
        .unwrap();
        assert!(f.is_empty());
    }

    #[test]
    fn duplicates_within_a_leg_count_once_at_their_best_rank() {
        let v = leg(&[(1, 0.1), (1, 0.5), (2, 0.6)], true);
        let f = fuse(&[v, leg(&[], false)], &[1.0, 1.0], Fusion::Rrf, 0.0, 10).unwrap();
        assert_eq!(f[0].row_id, 1);
        assert_eq!(f[0].legs[0], Some((1, 0.1)));
        assert_eq!(f[1].legs[0], Some((2, 0.6)));
        assert!((f[1].score - 0.5).abs() < 1e-12);
    }

    #[test]
    fn linear_fusion_normalises_each_leg() {
        let v = leg(&[(1, 0.0), (2, 0.5), (3, 1.0)], true);
        let t = leg(&[(3, 10.0), (1, 0.0)], false);
        let f = fuse(&[v, t], &[0.5, 0.5], Fusion::Linear, 60.0, 10).unwrap();
        // 1: 0.5·1 + 0.5·0 = 0.5; 3: 0.5·0 + 0.5·1 = 0.5 (tie → row 1 first);
        // 2: 0.5·0.5 = 0.25.
        assert_eq!(
            f.iter().map(|x| x.row_id).collect::<Vec<_>>(),
            vec![1, 3, 2]
        );
        assert!((f[2].score - 0.25).abs() < 1e-12);
        // Equal scores in a leg all normalise to 1.
        let f = fuse(
            &[leg(&[(4, 0.3), (5, 0.3)], true)],
            &[1.0],
            Fusion::Linear,
            60.0,
            10,
        )
        .unwrap();
        assert!(f.iter().all(|x| (x.score - 1.0).abs() < 1e-12));
    }

    #[test]
    fn weights_must_match_the_legs() {
        let err = fuse(
            &[leg(&[], true), leg(&[], false)],
            &[1.0],
            Fusion::Rrf,
            60.0,
            5,
        )
        .unwrap_err();
        assert!(err.to_string().contains("one weight per leg"), "{err}");
        let err = fuse(&[leg(&[], true)], &[-1.0], Fusion::Rrf, 60.0, 5).unwrap_err();
        assert!(err.to_string().contains("non-negative"), "{err}");
        assert!(Fusion::parse("max")
            .unwrap_err()
            .to_string()
            .contains("rrf or linear"));
    }

    /// Same scores position by position, and the same rows with the same
    /// columns except among rows tied with the last hit (k cuts a tie either
    /// way).
    #[track_caller]
    fn assert_same(a: &TextResults, b: &TextResults, what: &str) {
        let scores = |r: &TextResults| r.hits.iter().map(|h| h.score).collect::<Vec<_>>();
        let (sa, sb) = (scores(a), scores(b));
        assert_eq!(sa.len(), sb.len(), "{what}: {sa:?} vs {sb:?}");
        assert!(
            sa.iter()
                .zip(&sb)
                .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(1.0)),
            "{what}: scores {sa:?} vs {sb:?}"
        );
        let last = sa.last().copied();
        let firm = |r: &TextResults| {
            r.hits
                .iter()
                .filter(|h| last.is_none_or(|l| (h.score - l).abs() > 1e-5 * l.abs().max(1.0)))
                .map(|h| (h.row_id, h.fields.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(firm(a), firm(b), "{what}");
        assert_eq!(a.searched, b.searched, "{what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_direct_text_path_answers_as_lances_query_plan() {
        use crate::executor::LocalExecutor;
        use crate::ingest::{ingest, IngestRequest, WriteMode};
        use crate::progress::NoProgress;
        use crate::scalar_index::{create_scalar_index, ScalarIndexRequest, ScalarIndexType};
        use crate::storage::StorageOptions;
        use std::io::Write as _;

        const WORDS: &[&str] = &[
            "river", "bank", "money", "music", "storm", "garden", "engine", "poem", "winter",
            "market", "signal", "bridge", "ocean", "neural", "network", "clinic", "the", "of",
        ];
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, from: usize, n: usize| {
            let path = dir.path().join(name);
            let mut f = std::fs::File::create(&path).unwrap();
            for i in from..from + n {
                // Skewed word choice: common and rare words, varied lengths.
                let words: Vec<&str> = (0..3 + i % 11)
                    .map(|j| WORDS[(i * 7 + j * j * 13 + j) % 97 % WORDS.len()])
                    .collect();
                let title = format!("{} {}", WORDS[i % 5], WORDS[(i / 3) % WORDS.len()]);
                let line = serde_json::json!({"id": i, "title": title, "text": words.join(" ")});
                writeln!(f, "{line}").unwrap();
            }
            path
        };
        let loc = Location::resolve(
            &dir.path().join("t.lance").to_string_lossy(),
            &StorageOptions::new(),
        )
        .unwrap();
        let exec = LocalExecutor::new(2);
        let mut req = IngestRequest::new(vec![write("a.jsonl", 0, 1200)], WriteMode::Create);
        req.max_rows_per_file = 300;
        ingest(&loc, &req, &exec, &NoProgress).await.unwrap();
        for column in ["title", "text"] {
            let mut r = ScalarIndexRequest::new(column, ScalarIndexType::Inverted);
            r.rows_per_segment = Some(400);
            create_scalar_index(&loc, &r, &exec, &NoProgress)
                .await
                .unwrap();
        }
        let queries = [
            "river bank",
            "neural network clinic",
            "the",
            "storm",
            "winter market of the ocean",
            "absent words only",
        ];
        // Every query, k and projection both ways; `direct`: whether the
        // direct path is expected to apply.
        let check = |direct: Option<bool>, what: &'static str| {
            let loc = loc.clone();
            async move {
                let dataset = loc.open(None).await.unwrap();
                for q in queries {
                    for (k, columns, search) in [
                        (10, Some(vec!["id".to_string()]), None),
                        (3, Some(vec![]), None),
                        (50, None, Some(vec!["text".to_string()])),
                        (25, Some(vec!["title".to_string(), "id".to_string()]), None),
                    ] {
                        let mut r = TextSearchRequest::new(q, k);
                        r.columns = columns;
                        r.search_columns = search;
                        let searched = searched_columns(&loc, &dataset, &r.search_columns)
                            .await
                            .unwrap();
                        let applies = direct_text_search(&loc, &dataset, &searched, q, k)
                            .await
                            .unwrap()
                            .is_some();
                        if let Some(direct) = direct {
                            assert_eq!(applies, direct, "{what}: direct path for {q:?}");
                        }
                        let fast = search_text_in_with(&loc, &dataset, &r, false)
                            .await
                            .unwrap();
                        let planned = search_text_in_with(&loc, &dataset, &r, true).await.unwrap();
                        if ["river bank", "neural network clinic", "storm"].contains(&q) {
                            assert!(!planned.hits.is_empty(), "{what}: {q:?} finds nothing");
                        }
                        assert_same(&fast, &planned, &format!("{what}: {q:?}, k {k}"));
                    }
                }
            }
        };
        // Segments merged into one per index (the default): direct.
        check(Some(true), "one segment per index").await;

        // Unindexed rows, deleted rows: lance's plan.
        let mut req = IngestRequest::new(vec![write("b.jsonl", 1200, 300)], WriteMode::Append);
        req.max_rows_per_file = 300;
        ingest(&loc, &req, &exec, &NoProgress).await.unwrap();
        check(Some(false), "appended rows not indexed").await;
        for column in ["title", "text"] {
            let mut r = ScalarIndexRequest::new(column, ScalarIndexType::Inverted);
            r.replace = true;
            create_scalar_index(&loc, &r, &exec, &NoProgress)
                .await
                .unwrap();
        }
        check(Some(true), "rebuilt").await;
        // The appended fragment's rows all deleted: the fragment goes, the
        // index still lists it (if lance prunes it, the direct path is right).
        let mut dataset = loc.open(None).await.unwrap();
        dataset.delete("id >= 1200").await.unwrap();
        check(None, "a whole fragment deleted").await;
        let mut dataset = loc.open(None).await.unwrap();
        dataset.delete("id % 50 = 7").await.unwrap();
        check(Some(false), "deleted rows").await;

        // Kept segments (several per index): lance's plan.
        for column in ["title", "text"] {
            let mut r = ScalarIndexRequest::new(column, ScalarIndexType::Inverted);
            r.rows_per_segment = Some(400);
            r.keep_segments = true;
            r.replace = true;
            create_scalar_index(&loc, &r, &exec, &NoProgress)
                .await
                .unwrap();
        }
        check(Some(false), "kept segments, deleted rows").await;
    }
}
