//! Full-text search: each column's inverted index asked directly when
//! nothing needs lance's plan (no filter, no phrase, one segment over every
//! fragment, no deleted rows), lance's query plan otherwise.

use std::collections::HashMap;
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

use super::direct::covers_each_fragment_once;
use super::query::*;
use crate::dataset::version_cache::VersionCache;
use crate::error::{ensure_invalid, Error, Result};
use crate::limits::{self, Names};
use crate::storage::{Location, VersionSpec};

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
    /// The Arrow types of the requested columns, from the dataset searched
    /// (in-process only: the `table` module builds a typed batch
    /// with them).
    #[serde(skip)]
    pub columns: Option<arrow_schema::SchemaRef>,
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
pub(crate) fn projection(dataset: &Dataset, columns: &Option<Vec<String>>) -> Result<Vec<String>> {
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
pub(crate) async fn searched_columns(
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

pub(crate) fn fts_query(
    request: &TextSearchRequest,
    columns: &[String],
) -> Result<FullTextSearchQuery> {
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
pub(crate) static FTS_LOOKUPS: VersionCache<String, Option<uuid::Uuid>> = VersionCache::new(256);

/// The segment of `column`'s full-text index that the direct path can
/// search: the column holds plain strings, it has one full-text index of one
/// segment, which covers every fragment, and no row is deleted or overlaid.
pub(crate) async fn direct_fts_segment(
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

pub(crate) async fn find_direct_fts_segment(
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

pub(crate) fn is_inverted(index: &lance_table::format::IndexMetadata) -> bool {
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
pub(crate) async fn direct_text_search(
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
pub(crate) async fn search_text_in_with(
    location: &Location,
    dataset: &Dataset,
    request: &TextSearchRequest,
    planned_only: bool,
) -> Result<TextResults> {
    let started = Instant::now();
    limits::check_search(
        request.k,
        None,
        None,
        request.columns.as_deref(),
        request.filter.as_deref(),
        Names::Flags,
    )?;
    limits::check_query_length(&request.query, Names::Flags)?;
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
                columns: Some(projection_schema(dataset, &projection)),
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
        columns: Some(projection_schema(dataset, &projection)),
    })
}

pub(crate) fn text_hits(batch: &RecordBatch, projection: &[String]) -> Result<Vec<TextHit>> {
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

/// The `columns` of rows by row id, in the order of `ids`.
pub(crate) async fn fetch_rows(
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
    use std::collections::BTreeMap;

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
        use crate::index::scalar::{create_scalar_index, ScalarIndexRequest, ScalarIndexType};
        use crate::ingest::{ingest, IngestRequest, WriteMode};
        use crate::progress::NoProgress;
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
        let exec = crate::operations::local_executor(2);
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
