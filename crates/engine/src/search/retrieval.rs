//! Online retrieval: what `lanceflow serve` answers.
//!
//! A [`Retriever`] holds one pinned dataset version, the embedding model and
//! (through the process-wide lance session) the index caches, all loaded
//! once and shared by every request. A request names a mode (vector, text or
//! hybrid), a text query or a query vector, and the usual search knobs; the
//! answer carries the hits and the time each stage took.
//!
//! [`Retriever::refresh`] moves the pinned version to the latest one. The
//! pinned dataset is an `Arc`: a request in flight keeps the version it
//! started on, so a refresh never drops or mixes requests.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use lance::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::dataset::info::DatasetInfo;
use crate::embedding::{Embedder, EmbedderOptions};
use crate::error::{bail_invalid, Error, Result};
use crate::limits::{self, Names};
use crate::search::hybrid::{search_hybrid_in, Fusion, HybridRequest};
use crate::search::query::VectorSearchRequest;
use crate::search::text::{search_text_in, TextSearchRequest};
use crate::search::vector::search_in;
use crate::storage::{Location, VersionSpec};
use crate::vectors::Matrix;

pub use crate::limits::MAX_K;

/// Depth of each leg of a hybrid search: at least this many rows, or 2 × k.
const MIN_LEG_DEPTH: usize = 20;

/// How a request searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nearest neighbours of the query's embedding (or of `vector`).
    #[default]
    Vector,
    /// Full-text (BM25) search of the indexed text columns.
    Text,
    /// Both, fused (reciprocal rank fusion by default).
    Hybrid,
}

/// One search request (the JSON body of `POST /v1/search`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalRequest {
    /// The text query (embedded for the vector leg, tokenized for the text leg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A query vector instead of (vector mode) or besides (hybrid) the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// vector, text or hybrid.
    #[serde(default)]
    pub mode: Mode,
    /// Hits to return (1 to [`MAX_K`]; default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// SQL predicate applied before ranking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// IVF partitions probed (vector leg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nprobes: Option<usize>,
    /// Re-rank k × refine_factor candidates exactly (vector leg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refine_factor: Option<u32>,
    /// Columns to return (default: every non-vector column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Search this version instead of the served one (time travel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Hybrid fusion: rrf (default) or linear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<Fusion>,
    /// Hybrid weights of the vector and the text leg (default 1, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

fn default_k() -> usize {
    10
}

/// One hit. Which scores are set depends on the mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalHit {
    /// Lance row id (stable within a version).
    pub row_id: u64,
    /// Vector distance (vector and hybrid modes; smaller is nearer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<f32>,
    /// BM25 score (text and hybrid modes; larger is better).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_score: Option<f32>,
    /// Fused score (hybrid mode; larger is better).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The requested columns.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Milliseconds spent in each stage of one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Embedding the text query (0 when a vector was given or not needed).
    pub embed_ms: f64,
    /// The vector leg.
    pub vector_ms: f64,
    /// The full-text leg.
    pub text_ms: f64,
    /// Fusing the legs and reading the winners' columns (hybrid).
    pub fusion_ms: f64,
    /// Retrieval without embedding.
    pub retrieval_ms: f64,
    /// The whole request inside the engine.
    pub total_ms: f64,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalResponse {
    /// The mode that ran.
    pub mode: Mode,
    /// The dataset version searched.
    pub version: u64,
    /// Hits, best first.
    pub hits: Vec<RetrievalHit>,
    /// Time per stage.
    pub timings: Timings,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// The version served before.
    pub from: u64,
    /// The version served now.
    pub to: u64,
}

/// What a service serves (`GET /v1/info`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The served dataset version, with its rows, schema and indexes.
    pub dataset: DatasetInfo,
    /// The embedding model, when one is loaded.
    pub model: Option<ModelInfo>,
}

/// The loaded embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Embedding dimension.
    pub dim: usize,
    /// Encoder backend (ort, native, candle).
    pub backend: String,
}

/// Texts waiting for the embedding model, with where each answer goes.
type EmbedJob = (String, tokio::sync::oneshot::Sender<Result<Vec<f32>>>);

/// Most texts embedded in one forward pass by the batcher.
const MAX_EMBED_BATCH: usize = 64;

/// One dataset, pinned at a version, plus the embedding model.
pub struct Retriever {
    location: Location,
    pinned: RwLock<Arc<Dataset>>,
    /// The version or tag the service was started at: it then serves that
    /// version only, and refuses to refresh.
    pin: Option<VersionSpec>,
    /// One refresh at a time, so the served version only moves forward.
    refreshing: tokio::sync::Mutex<()>,
    embedder: Option<Arc<Embedder>>,
    /// Queries to embed: one task takes whatever is waiting and embeds it in
    /// one batch, so concurrent requests share forward passes instead of
    /// queueing for the model one by one.
    batcher: Option<tokio::sync::mpsc::UnboundedSender<EmbedJob>>,
}

/// The batching loop: wait for one text, take every other waiting text (up
/// to [`MAX_EMBED_BATCH`]), embed them together off the async threads, answer
/// each request. Ends when the retriever is dropped.
async fn embed_batches(
    embedder: Arc<Embedder>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<EmbedJob>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_EMBED_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (texts, replies): (Vec<String>, Vec<_>) = batch.into_iter().unzip();
        let model = embedder.clone();
        let embedded = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            model.embed(&refs)
        })
        .await
        .map_err(|e| Error::Internal(format!("embedding task: {e}")))
        .and_then(|r| r);
        match embedded {
            Ok(matrix) => {
                for (i, reply) in replies.into_iter().enumerate() {
                    let _ = reply.send(Ok(matrix.row(i).to_vec()));
                }
            }
            Err(e) => {
                let kind = e.kind();
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::from_kind(kind, message.clone())));
                }
            }
        }
    }
}

impl std::fmt::Debug for Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retriever")
            .field("location", &self.location.uri())
            .field("version", &self.version())
            .finish()
    }
}

impl Retriever {
    /// Open `location` at `at` (default: the latest version) and, unless
    /// `model` is `None`, load the embedding model (once per process).
    pub async fn open(
        location: Location,
        at: Option<&VersionSpec>,
        model: Option<EmbedderOptions>,
    ) -> Result<Self> {
        let dataset = Arc::new(location.open(at).await?);
        let embedder = match model {
            Some(options) => Some(
                tokio::task::spawn_blocking(move || crate::embedding::shared_embedder(&options))
                    .await
                    .map_err(|e| Error::Internal(format!("loading the model: {e}")))??,
            ),
            None => None,
        };
        let batcher = embedder.as_ref().map(|e| {
            let (send, receive) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(embed_batches(e.clone(), receive));
            send
        });
        Ok(Self {
            location,
            pinned: RwLock::new(dataset),
            pin: at.cloned(),
            refreshing: tokio::sync::Mutex::new(()),
            embedder,
            batcher,
        })
    }

    /// The dataset's location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The served (pinned) dataset.
    pub fn dataset(&self) -> Arc<Dataset> {
        match self.pinned.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The served version.
    pub fn version(&self) -> u64 {
        self.dataset().version().version
    }

    /// Serve the latest version from now on; requests in flight finish on
    /// the version they started with. The served version never moves
    /// backwards (refreshes run one at a time), a service started at a
    /// version or tag refuses, and a version this service could not answer
    /// from (a vector column gone or of another dimension) is refused while
    /// the current one stays served.
    pub async fn refresh(&self) -> Result<Refresh> {
        if let Some(pin) = &self.pin {
            return Err(Error::NotSupported(format!(
                "this service serves {} only (it was started pinned to it); restart it without a version or tag to follow the latest version",
                match pin {
                    VersionSpec::Number(v) => format!("version {v}"),
                    VersionSpec::Tag(t) => format!("tag '{t}'"),
                }
            )));
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let current = self.dataset();
        let from = current.version().version;
        let latest = self.location.open(None).await?;
        let to = latest.version().version;
        if to <= from {
            return Ok(Refresh { from, to: from });
        }
        servable(&current, &latest)?;
        match self.pinned.write() {
            Ok(mut guard) => *guard = Arc::new(latest),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(latest),
        }
        tracing::info!(from, to, "serving a new version");
        Ok(Refresh { from, to })
    }

    /// The served version's description and the model.
    pub async fn info(&self) -> Result<ServiceInfo> {
        let version = VersionSpec::Number(self.version());
        Ok(ServiceInfo {
            dataset: crate::dataset::info::info(&self.location, Some(&version)).await?,
            model: self.embedder.as_ref().map(|e| ModelInfo {
                dim: e.dim(),
                backend: e.backend().as_str().to_string(),
            }),
        })
    }

    /// Check a request without searching (also done by [`Retriever::search`]).
    pub fn validate(&self, request: &RetrievalRequest) -> Result<()> {
        limits::check_search(
            request.k,
            request.nprobes,
            request.refine_factor,
            request.columns.as_deref(),
            request.filter.as_deref(),
            Names::Fields,
        )?;
        if let Some(v) = &request.vector {
            limits::check_query_vector(v, Names::Fields)?;
        }
        if let Some(q) = &request.query {
            limits::check_query_length(q, Names::Fields)?;
        }
        let query = request.query.as_deref();
        match request.mode {
            Mode::Vector => match (query, &request.vector) {
                (Some(_), Some(_)) => {
                    bail_invalid!("give either \"query\" (a text to embed) or \"vector\", not both")
                }
                (None, None) => bail_invalid!(
                    "a vector search needs \"query\" (a text to embed) or \"vector\" (numbers)"
                ),
                (Some(q), None) => {
                    crate::search::text::check_query(q)?;
                }
                (None, Some(_)) => {}
            },
            Mode::Text | Mode::Hybrid => {
                let Some(q) = query else {
                    bail_invalid!("a {:?} search needs \"query\" (a text)", request.mode);
                };
                crate::search::text::check_query(q)?;
                if request.mode == Mode::Text && request.vector.is_some() {
                    bail_invalid!("a text search takes no \"vector\"; use mode \"hybrid\"");
                }
            }
        }
        if request.mode != Mode::Hybrid && (request.fusion.is_some() || request.weights.is_some()) {
            bail_invalid!("\"fusion\" and \"weights\" apply to mode \"hybrid\" only");
        }
        if let Some(w) = &request.weights {
            if w.len() != 2 || w.iter().any(|x| !x.is_finite() || *x < 0.0) {
                bail_invalid!(
                    "\"weights\" takes two non-negative numbers: the vector leg's and the text leg's"
                );
            }
        }
        Ok(())
    }

    /// Answer one request.
    pub async fn search(&self, request: &RetrievalRequest) -> Result<RetrievalResponse> {
        let started = Instant::now();
        self.validate(request)?;
        let dataset = match request.version {
            Some(v) if v != self.version() => {
                match self.location.open(Some(&VersionSpec::Number(v))).await {
                    Ok(ds) => Arc::new(ds),
                    Err(Error::NotFound(_)) => {
                        return Err(Error::NotFound(format!(
                            "\"version\" {v} does not exist; the service serves version {}",
                            self.version()
                        )))
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => self.dataset(),
        };
        let mut timings = Timings::default();

        // The query vector: given, or the text's embedding.
        let needs_vector = request.mode != Mode::Text;
        let queries = match (&request.vector, &request.query) {
            (Some(v), _) if needs_vector => Some(Matrix::new(v.len(), v.clone())?),
            (None, Some(text)) if needs_vector => {
                let t = Instant::now();
                let m = self.embed(text).await?;
                timings.embed_ms = ms(t);
                Some(m)
            }
            _ => None,
        };
        let retrieval = Instant::now();
        let hits = match (request.mode, queries) {
            (Mode::Vector, Some(queries)) => {
                let mut vector = VectorSearchRequest::new(queries, request.k);
                vector.nprobes = request.nprobes;
                vector.refine_factor = request.refine_factor;
                vector.filter = request.filter.clone();
                vector.columns = request.columns.clone();
                let results = search_in(&self.location, dataset.clone(), &vector, 1).await?;
                timings.vector_ms = ms(retrieval);
                results
                    .results
                    .into_iter()
                    .next()
                    .map(|q| q.hits)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|h| RetrievalHit {
                        row_id: h.row_id,
                        distance: Some(h.distance),
                        text_score: None,
                        score: None,
                        fields: h.fields,
                    })
                    .collect()
            }
            (Mode::Text, _) => {
                let results =
                    search_text_in(&self.location, &dataset, &self.text_request(request)).await?;
                timings.text_ms = ms(retrieval);
                results
                    .hits
                    .into_iter()
                    .map(|h| RetrievalHit {
                        row_id: h.row_id,
                        distance: None,
                        text_score: Some(h.score),
                        score: None,
                        fields: h.fields,
                    })
                    .collect()
            }
            (Mode::Hybrid, Some(queries)) => {
                let depth = (request.k * 2).max(MIN_LEG_DEPTH).min(MAX_K);
                let mut text = self.text_request(request);
                text.k = depth;
                let mut vector = VectorSearchRequest::new(queries, depth);
                vector.nprobes = request.nprobes;
                // The leg goes deeper than k for the fusion but re-ranks
                // about as many candidates as a vector search of k (at
                // least k × factor): exact re-ranking reads full vectors,
                // the largest cost of a query under load.
                vector.refine_factor = request
                    .refine_factor
                    .map(|f| ((f as usize * request.k).div_ceil(depth).max(1)) as u32);
                let hybrid = HybridRequest {
                    text,
                    vector,
                    k: request.k,
                    fusion: request.fusion.unwrap_or(Fusion::Rrf),
                    rrf_k: 60.0,
                    weights: request.weights.clone().unwrap_or_else(|| vec![1.0, 1.0]),
                };
                let results = search_hybrid_in(&self.location, dataset.clone(), &hybrid).await?;
                timings.vector_ms = results.vector_seconds * 1e3;
                timings.text_ms = results.text_seconds * 1e3;
                timings.fusion_ms =
                    (results.seconds - results.vector_seconds.max(results.text_seconds)).max(0.0)
                        * 1e3;
                results
                    .hits
                    .into_iter()
                    .map(|h| RetrievalHit {
                        row_id: h.row_id,
                        distance: h.distance,
                        text_score: h.text_score,
                        score: Some(h.score),
                        fields: h.fields,
                    })
                    .collect()
            }
            (mode, None) => {
                return Err(Error::Internal(format!(
                    "{mode:?} search without a query vector"
                )))
            }
        };
        timings.retrieval_ms = ms(retrieval);
        timings.total_ms = ms(started);
        Ok(RetrievalResponse {
            mode: request.mode,
            version: dataset.version().version,
            hits,
            timings,
        })
    }

    fn text_request(&self, request: &RetrievalRequest) -> TextSearchRequest {
        let mut text = TextSearchRequest::new(request.query.clone().unwrap_or_default(), request.k);
        text.filter = request.filter.clone();
        text.columns = request.columns.clone();
        text
    }

    /// The embedding of one text, batched with the texts of concurrent
    /// requests (see [`embed_batches`]).
    async fn embed(&self, text: &str) -> Result<Matrix> {
        let Some(batcher) = &self.batcher else {
            return Err(Error::NotSupported(
                "this service runs without an embedding model: send \"vector\" (the query's \
                 embedding) instead of a text \"query\", or ask its operator to load the model"
                    .into(),
            ));
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        batcher
            .send((text.to_string(), reply))
            .map_err(|_| Error::Internal("the embedding batcher has stopped".into()))?;
        let vector = answer
            .await
            .map_err(|_| Error::Internal("the embedding batcher dropped a request".into()))??;
        Matrix::new(vector.len(), vector)
    }
}

/// Whether `next` can be served in place of `current`: every vector column
/// of `current` is still there with the same dimension (queries and the
/// model's vectors are of that dimension).
fn servable(current: &Dataset, next: &Dataset) -> Result<()> {
    let dimension = |ds: &Dataset, name: &str| {
        ds.schema().field(name).and_then(|f| match f.data_type() {
            arrow_schema::DataType::FixedSizeList(_, n) => Some(n),
            _ => None,
        })
    };
    for field in &current.schema().fields {
        let Some(dim) = dimension(current, &field.name) else {
            continue;
        };
        let (name, from, to) = (
            &field.name,
            current.version().version,
            next.version().version,
        );
        match dimension(next, name) {
            Some(d) if d == dim => {}
            Some(d) => {
                return Err(Error::NotSupported(format!(
                    "version {to} cannot be served: its vector column '{name}' has {d}                      dimensions where version {from} has {dim}; still serving version {from}"
                )))
            }
            None => {
                return Err(Error::NotSupported(format!(
                    "version {to} cannot be served: it has no vector column '{name}' (version {from} has one); still serving version {from}. Embed the new version, then refresh"
                )))
            }
        }
    }
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_defaults_and_reject_unknown_fields() {
        let r: RetrievalRequest = serde_json::from_str(r#"{"query": "q"}"#).unwrap();
        assert_eq!(r.mode, Mode::Vector);
        assert_eq!(r.k, 10);
        let r: RetrievalRequest =
            serde_json::from_str(r#"{"query": "q", "mode": "hybrid", "fusion": "linear"}"#)
                .unwrap();
        assert_eq!(r.fusion, Some(Fusion::Linear));
        let e = serde_json::from_str::<RetrievalRequest>(r#"{"query": "q", "mode": "fuzzy"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant"), "{e}");
        let e = serde_json::from_str::<RetrievalRequest>(r#"{"query": "q", "topk": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
