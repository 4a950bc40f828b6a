//! Hybrid (vector + full-text) search with rank fusion.
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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lance::dataset::Dataset;

use serde::{Deserialize, Serialize};

use super::query::*;
use super::vector::search_in;
use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::limits::{self, Names};
use crate::storage::{Location, VersionSpec};

use super::text::*;

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

    /// The name, as it is parsed.
    pub fn as_str(self) -> &'static str {
        match self {
            Fusion::Rrf => "rrf",
            Fusion::Linear => "linear",
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

/// Depth of each leg when the caller names none.
pub const DEFAULT_LEG_K: usize = 20;
/// The RRF constant when the caller names none.
pub const DEFAULT_RRF_K: f64 = 60.0;

impl HybridRequest {
    /// `k` fused hits of the two legs by RRF (constant [`DEFAULT_RRF_K`]),
    /// both legs weighted 1.
    pub fn new(text: TextSearchRequest, vector: VectorSearchRequest, k: usize) -> Self {
        Self {
            text,
            vector,
            k,
            fusion: Fusion::Rrf,
            rrf_k: DEFAULT_RRF_K,
            weights: vec![1.0, 1.0],
        }
    }
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
    /// The Arrow types of the requested columns, from the dataset searched
    /// (in-process only: the `table` module builds a typed batch
    /// with them).
    #[serde(skip)]
    pub columns: Option<arrow_schema::SchemaRef>,
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
    limits::check_k(request.k, Names::Flags)?;
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
        columns: Some(projection_schema(&dataset, &projection)),
    })
}

pub(crate) fn leg_error(leg: &str, e: Error) -> Error {
    match e {
        Error::NotFound(m) if leg == "vector" && m.contains("vector") => Error::NotFound(format!(
            "hybrid search needs a vector column (and ideally a vector index): {m}"
        )),
        other => other,
    }
}

crate::error::from_str_by_parse!(Fusion);

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
}
