//! One function per subcommand: raw arguments → validated engine call →
//! output on an injected writer (human text, or JSON with --json).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use lanceflow::config::Config;
use lanceflow::ingest::{IngestRequest, WriteMode};
use lanceflow::input::InputFormat;
use std::sync::Arc;

use lanceflow::{Executor, LocalExecutor, Location, StorageOptions, VersionSpec};
use serde::Serialize;

use lanceflow::search::{SearchResults, VectorSearchRequest};
use lanceflow::vector_index::{Metric, VectorIndexRequest, VectorIndexType};

use crate::args::{
    BenchCommand, Cli, Command, CompactArgs, ConvertCommand, EmbedArgs, GenerateCommand,
    GlobalArgs, HybridSearchArgs, IndexCommand, IngestArgs, OptimizeArgs, ScalarIndexArgs,
    SearchCommand, ServeArgs, TagCommand, TextSearchArgs, VectorIndexArgs, VectorSearchArgs,
    VersionArgs,
};
use crate::render::progress_for;
use crate::{ExecutorFactory, ExecutorKind};

/// Settings shared by every command, validated once.
pub(crate) struct Context {
    pub(crate) options: StorageOptions,
    pub(crate) workers: usize,
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    executor: Arc<dyn Executor>,
}

impl Context {
    fn new(global: &GlobalArgs, remote: Option<&dyn ExecutorFactory>) -> Result<Self> {
        let config = match &global.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let mut options = config.storage_options()?;
        for pair in &global.storage_options {
            options.set_pair(pair)?;
        }
        if global.workers == Some(0) {
            return Err(
                lanceflow::Error::InvalidInput("--workers must be at least 1".into()).into(),
            );
        }
        let (executor, workers): (Arc<dyn Executor>, usize) = match global.executor {
            ExecutorKind::Local => {
                let workers = global
                    .workers
                    .or(config.workers)
                    .unwrap_or_else(lanceflow::executor::default_workers);
                (Arc::new(LocalExecutor::new(workers)), workers)
            }
            ExecutorKind::Ray => {
                let Some(factory) = remote else {
                    return Err(lanceflow::Error::NotSupported(
                        "--executor ray needs the Python package: run `python3 -m lanceflow ...` \
                         (the `lanceflow` binary does this itself)"
                            .into(),
                    )
                    .into());
                };
                let executor = factory.make(
                    global.ray_address.as_deref(),
                    global.workers.or(config.workers),
                )?;
                let workers = executor.parallelism();
                (executor, workers)
            }
        };
        Ok(Self {
            options,
            workers,
            json: global.json,
            quiet: global.quiet,
            executor,
        })
    }

    pub(crate) fn location(&self, uri: &str) -> Result<Location> {
        Ok(Location::resolve(uri, &self.options)?)
    }

    /// Where this command's tasks run (`--executor`).
    pub(crate) fn executor(&self) -> SharedExecutor {
        SharedExecutor(self.executor.clone())
    }
}

/// The command's executor, whichever kind it is, as one `Executor` value.
pub(crate) struct SharedExecutor(Arc<dyn Executor>);

#[async_trait::async_trait]
impl Executor for SharedExecutor {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn parallelism(&self) -> usize {
        self.0.parallelism()
    }

    async fn run(
        &self,
        stage: &str,
        tasks: Vec<lanceflow::task::TaskSpec>,
        progress: &dyn lanceflow::progress::Progress,
    ) -> lanceflow::Result<Vec<lanceflow::task::TaskOutcome>> {
        self.0.run(stage, tasks, progress).await
    }
}

fn version_spec(at: &VersionArgs) -> Option<VersionSpec> {
    match (&at.version, &at.tag) {
        (Some(v), _) => Some(VersionSpec::Number(*v)),
        (None, Some(t)) => Some(VersionSpec::Tag(t.clone())),
        (None, None) => None,
    }
}

pub(crate) fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Run one parsed command line.
pub async fn run(
    cli: Cli,
    out: &mut dyn Write,
    remote: Option<&dyn ExecutorFactory>,
) -> Result<()> {
    let ctx = Context::new(&cli.global, remote)?;
    match cli.command {
        Command::Ingest(args) => ingest(&ctx, args, out).await,
        Command::Pipeline {
            file,
            report,
            state,
            restart,
        } => {
            crate::pipeline::run(
                &cli.global,
                &file,
                report.as_deref(),
                state.as_deref(),
                restart,
                remote,
                out,
            )
            .await
        }
        Command::Info { uri, at } => info(&ctx, &uri, &at, out).await,
        Command::Versions { uri } => versions(&ctx, &uri, out).await,
        Command::Tag(cmd) => tag(&ctx, cmd, out).await,
        Command::Restore { uri, at } => restore(&ctx, &uri, &at, out).await,
        Command::Cleanup {
            uri,
            older_than,
            dry_run,
        } => cleanup(&ctx, &uri, &older_than, dry_run, out).await,
        Command::Delete { uri, predicate } => {
            let report = lanceflow::versions::delete_rows(&ctx.location(&uri)?, &predicate).await?;
            if ctx.json {
                return print_json(out, &report);
            }
            writeln!(
                out,
                "deleted {} row(s) where {predicate}; {} row(s) left, version {}",
                report.rows_deleted, report.rows, report.version
            )?;
            Ok(())
        }
        Command::Compact(args) => compact(&ctx, args, out).await,
        Command::Optimize(args) => optimize(&ctx, args, out).await,
        Command::Embed(args) => embed(&ctx, *args, out).await,
        Command::EmbedQuery { text, model } => {
            let vector = embed_texts(&model, vec![text]).await?.data;
            serde_json::to_writer(&mut *out, &vector)?;
            writeln!(out)?;
            Ok(())
        }
        Command::Index(IndexCommand::Vector(args)) => index_vector(&ctx, *args, out).await,
        Command::Index(IndexCommand::Scalar(args)) => index_scalar(&ctx, *args, out).await,
        Command::Search(SearchCommand::Vector(args)) => search_vector(&ctx, *args, out).await,
        Command::Search(SearchCommand::Text(args)) => search_text(&ctx, *args, out).await,
        Command::Search(SearchCommand::Hybrid(args)) => search_hybrid(&ctx, *args, out).await,
        Command::Generate(GenerateCommand::Vectors {
            out: file,
            rows,
            dim,
            clusters,
            seed,
        }) => {
            let spec = lanceflow::vectors::ClusteredSpec::new(rows, dim, clusters, seed);
            let (data, labels) = lanceflow::vectors::clustered_vectors(&spec)?;
            lanceflow::vectors::write_generated_parquet(&file, &data, &labels)?;
            if ctx.json {
                print_json(
                    out,
                    &serde_json::json!({"rows": rows, "dim": dim, "out": file}),
                )
            } else {
                writeln!(
                    out,
                    "wrote {rows} clustered {dim}-d unit vectors ({clusters} clusters) to {}",
                    file.display()
                )?;
                Ok(())
            }
        }
        Command::Bench(BenchCommand::Embed(args)) => {
            crate::bench_embed::bench_embed(&ctx, *args, out).await
        }
        Command::Bench(BenchCommand::Maintain(args)) => {
            crate::bench_maintain::bench_maintain(&ctx, args, out).await
        }
        Command::Bench(BenchCommand::Text(args)) => {
            crate::bench_text::bench_text(&ctx, *args, out).await
        }
        Command::Bench(BenchCommand::Serve(args)) => {
            crate::bench_serve::bench_serve(&ctx, *args, out).await
        }
        Command::Serve(args) => serve(&ctx, *args, out).await,
        Command::Bench(BenchCommand::Vector(args)) => {
            crate::bench::bench_vector(&ctx, *args, out).await
        }
        Command::Convert(ConvertCommand::Wordnet {
            dict,
            out: file,
            sample,
        }) => {
            let rows = lanceflow::corpus::convert_wordnet(&dict, &file, sample)?;
            if ctx.json {
                print_json(out, &serde_json::json!({"rows": rows, "out": file}))
            } else {
                writeln!(out, "wrote {rows} synsets to {}", file.display())?;
                Ok(())
            }
        }
        Command::Bench(BenchCommand::Ingest {
            input,
            max_rows_per_file,
            repeat,
            scratch,
        }) => bench_ingest(&ctx, input, max_rows_per_file, repeat, scratch, out).await,
    }
}

async fn ingest(ctx: &Context, args: IngestArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(&args.to)?;
    let request = IngestRequest {
        inputs: args.inputs,
        format: args.format.as_deref().map(InputFormat::parse).transpose()?,
        mode: WriteMode::parse(&args.mode)?,
        max_rows_per_file: args.max_rows_per_file,
        columns: args.columns,
    };
    let progress = progress_for(ctx.quiet);
    let report =
        lanceflow::ingest::ingest(&location, &request, &ctx.executor(), progress.as_ref()).await?;
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "ingested {} rows from {} file(s) into {} as version {} ({} fragment(s), {} rows in total) in {:.2}s ({:.0} rows/s)",
        report.rows_written,
        report.inputs,
        report.uri,
        report.version,
        report.fragments_written,
        report.total_rows,
        report.seconds,
        report.rows_per_second
    )?;
    Ok(())
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

async fn info(ctx: &Context, uri: &str, at: &VersionArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(uri)?;
    let info = lanceflow::info::info(&location, version_spec(at).as_ref()).await?;
    if ctx.json {
        return print_json(out, &info);
    }
    writeln!(out, "dataset   {}", info.uri)?;
    let latest = if info.version == info.latest_version {
        " (latest)".to_string()
    } else {
        format!(" (latest is {})", info.latest_version)
    };
    writeln!(
        out,
        "version   {}{latest}, committed {}",
        info.version, info.committed_at
    )?;
    if !info.tags.is_empty() {
        writeln!(out, "tags      {}", info.tags.join(", "))?;
    }
    writeln!(out, "rows      {}", info.rows)?;
    writeln!(out, "fragments {}", info.fragments)?;
    writeln!(out, "size      {}", human_bytes(info.size_bytes))?;
    writeln!(out, "schema")?;
    for c in &info.schema {
        let null = if c.nullable { "" } else { " not null" };
        writeln!(
            out,
            "  {:<24} {}{null}  ({})",
            c.name,
            c.data_type,
            human_bytes(c.bytes_on_disk)
        )?;
    }
    if info.indices.is_empty() {
        writeln!(out, "indices   none")?;
    } else {
        writeln!(out, "indices")?;
        for i in &info.indices {
            writeln!(
                out,
                "  {:<24} {} on {} ({} segment(s), {} rows, {} unindexed fragment(s))",
                i.name,
                i.index_type,
                i.columns.join(", "),
                i.segments,
                i.rows_indexed,
                i.unindexed_fragments
            )?;
        }
    }
    if !info.storage_options.is_empty() {
        writeln!(out, "storage")?;
        for (k, v) in &info.storage_options {
            writeln!(out, "  {k} = {v}")?;
        }
    }
    Ok(())
}

async fn versions(ctx: &Context, uri: &str, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(uri)?;
    let list = lanceflow::versions::versions(&location).await?;
    if ctx.json {
        return print_json(out, &list);
    }
    writeln!(
        out,
        "{:>7}  {:<19}  {:<16}  {:>10}  {:>9}  tags",
        "version", "committed", "operation", "rows", "fragments"
    )?;
    for v in list {
        let mark = if v.latest { " (latest)" } else { "" };
        let committed: String = v
            .committed_at
            .replacen('T', " ", 1)
            .chars()
            .take(19)
            .collect();
        writeln!(
            out,
            "{:>7}  {:<19}  {:<16}  {:>10}  {:>9}  {}{mark}",
            v.version,
            committed,
            v.operation,
            v.rows,
            v.fragments,
            v.tags.join(", ")
        )?;
    }
    Ok(())
}

async fn tag(ctx: &Context, cmd: TagCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        TagCommand::Create { uri, name, version } => {
            let t = lanceflow::versions::create_tag(&ctx.location(&uri)?, &name, version).await?;
            if ctx.json {
                return print_json(out, &t);
            }
            writeln!(out, "tag '{}' → version {}", t.name, t.version)?;
        }
        TagCommand::List { uri } => {
            let tags = lanceflow::versions::list_tags(&ctx.location(&uri)?).await?;
            if ctx.json {
                return print_json(out, &tags);
            }
            for t in tags {
                writeln!(out, "{}\t{}", t.name, t.version)?;
            }
        }
        TagCommand::Delete { uri, name } => {
            let t = lanceflow::versions::delete_tag(&ctx.location(&uri)?, &name).await?;
            if ctx.json {
                return print_json(out, &t);
            }
            writeln!(out, "deleted tag '{}' (was version {})", t.name, t.version)?;
        }
    }
    Ok(())
}

async fn restore(ctx: &Context, uri: &str, at: &VersionArgs, out: &mut dyn Write) -> Result<()> {
    let Some(spec) = version_spec(at) else {
        return Err(lanceflow::Error::InvalidInput(
            "say which version to restore: --version N or --tag T".into(),
        )
        .into());
    };
    let report = lanceflow::versions::restore(&ctx.location(uri)?, &spec).await?;
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "restored version {} as new version {}",
        report.restored, report.new_version
    )?;
    Ok(())
}

async fn cleanup(
    ctx: &Context,
    uri: &str,
    older_than: &str,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let age = lanceflow::versions::parse_age(older_than)?;
    let report = lanceflow::versions::cleanup(&ctx.location(uri)?, age, dry_run).await?;
    if ctx.json {
        return print_json(out, &report);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    writeln!(
        out,
        "{verb} {} old version(s), {} data file(s), {} index file(s): {} freed",
        report.old_versions,
        report.data_files_removed,
        report.index_files_removed,
        human_bytes(report.bytes_removed)
    )?;
    Ok(())
}

async fn compact(ctx: &Context, args: CompactArgs, out: &mut dyn Write) -> Result<()> {
    let request = lanceflow::compact::CompactRequest {
        target_rows_per_fragment: args.target_rows_per_fragment,
        max_rows_per_group: args.max_rows_per_group,
        materialize_deletions: if args.no_materialize_deletions {
            Some(false)
        } else if args.materialize_deletions {
            Some(true)
        } else {
            None
        },
        deletion_threshold: args.deletion_threshold,
    };
    let progress = progress_for(ctx.quiet);
    let report = lanceflow::compact::compact(
        &ctx.location(&args.uri)?,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    if ctx.json {
        return print_json(out, &report);
    }
    if !report.compacted {
        writeln!(
            out,
            "nothing to compact: {} fragment(s) in version {} already meet the target",
            report.fragments_before, report.version
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "compacted {}: {} → {} fragments ({} replaced by {}), {} rows rewritten in {} task(s), \
         version {} in {:.2}s (rewrite {:.2}s, commit {:.2}s)",
        report.uri,
        report.fragments_before,
        report.fragments_after,
        report.fragments_removed,
        report.fragments_added,
        report.rows_rewritten,
        report.tasks,
        report.version,
        report.seconds,
        report.rewrite_seconds,
        report.commit_seconds
    )?;
    Ok(())
}

async fn optimize(ctx: &Context, args: OptimizeArgs, out: &mut dyn Write) -> Result<()> {
    let request = lanceflow::optimize::OptimizeRequest {
        indexes: args.indexes,
        merge: args.merge,
        keep_segments: args.keep_segments,
        retrain: args.retrain,
        rows_per_segment: args.rows_per_segment,
    };
    let progress = progress_for(ctx.quiet);
    let report = lanceflow::optimize::optimize(
        &ctx.location(&args.uri)?,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    if ctx.json {
        return print_json(out, &report);
    }
    if report.optimized {
        writeln!(
            out,
            "optimized {}: {} rows indexed (summed over {} index(es)) by {} build and {} merge \
             task(s), version {} in {:.2}s (build {:.2}s, merge {:.2}s, commit {:.2}s)",
            report.uri,
            report.rows_indexed,
            report.indexes.len(),
            report.build_tasks,
            report.merge_tasks,
            report.version,
            report.seconds,
            report.build_seconds,
            report.merge_seconds,
            report.commit_seconds
        )?;
    } else {
        writeln!(
            out,
            "nothing to optimize in version {}: every index covers every fragment",
            report.version
        )?;
    }
    for i in &report.indexes {
        writeln!(
            out,
            "  {:<24} {:<10} segments {} → {}, unindexed fragments {} → {}",
            i.name,
            i.index_type,
            i.segments_before,
            i.segments_after,
            i.unindexed_fragments_before,
            i.unindexed_fragments_after
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct BenchIngestReport {
    input: PathBuf,
    rows: u64,
    input_bytes: u64,
    fragments: usize,
    workers: usize,
    runs_seconds: Vec<f64>,
    best_seconds: f64,
    median_seconds: f64,
    best_rows_per_second: f64,
    median_rows_per_second: f64,
}

async fn bench_ingest(
    ctx: &Context,
    input: PathBuf,
    max_rows_per_file: usize,
    repeat: usize,
    scratch: Option<PathBuf>,
    out: &mut dyn Write,
) -> Result<()> {
    let repeat = repeat.max(1);
    let tmp = tempfile::Builder::new()
        .prefix("lanceflow-bench-")
        .tempdir_in(scratch.unwrap_or_else(std::env::temp_dir))?;
    let mut runs = Vec::with_capacity(repeat);
    let mut last = None;
    for i in 0..repeat {
        let target = tmp.path().join(format!("run{i}.lance"));
        let location = ctx.location(&target.to_string_lossy())?;
        let mut request = IngestRequest::new(vec![input.clone()], WriteMode::Create);
        request.max_rows_per_file = max_rows_per_file;
        let report = lanceflow::ingest::ingest(
            &location,
            &request,
            &ctx.executor(),
            &lanceflow::progress::NoProgress,
        )
        .await?;
        runs.push(report.seconds);
        last = Some(report);
        std::fs::remove_dir_all(&target)?;
    }
    let Some(last) = last else {
        return Ok(());
    };
    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let best = sorted[0];
    let median = sorted[sorted.len() / 2];
    let report = BenchIngestReport {
        input,
        rows: last.rows_written,
        input_bytes: last.input_bytes,
        fragments: last.fragments_written,
        workers: ctx.workers,
        runs_seconds: runs,
        best_seconds: best,
        median_seconds: median,
        best_rows_per_second: last.rows_written as f64 / best,
        median_rows_per_second: last.rows_written as f64 / median,
    };
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "lanceflow ingest: {} rows ({}) → {} fragments; best {:.3}s ({:.0} rows/s), median {:.3}s ({:.0} rows/s) over {} run(s)",
        report.rows,
        human_bytes(report.input_bytes),
        report.fragments,
        report.best_seconds,
        report.best_rows_per_second,
        report.median_seconds,
        report.median_rows_per_second,
        repeat
    )?;
    Ok(())
}

pub(crate) fn vector_index_request(args: &VectorIndexArgs) -> Result<VectorIndexRequest> {
    let mut request = VectorIndexRequest::new(
        args.column.clone(),
        VectorIndexType::parse(&args.index_type)?,
        Metric::parse(&args.metric)?,
    );
    request.partitions = args.partitions;
    request.sub_vectors = args.sub_vectors;
    request.num_bits = args.num_bits;
    request.sample_rate = args.sample_rate;
    request.max_iters = args.max_iters;
    request.name = args.name.clone();
    request.replace = !args.no_replace;
    request.rows_per_segment = args.rows_per_segment;
    request.keep_segments = args.keep_segments;
    request.centroids = args.centroids.clone();
    request.codebook = args.codebook.clone();
    request.save_artifacts = args.save_artifacts.clone();
    request.hnsw_m = args.hnsw_m;
    request.hnsw_ef_construction = args.hnsw_ef_construction;
    request.training = args.training.training();
    request.seed = args.seed;
    Ok(request)
}

async fn embed(ctx: &Context, args: EmbedArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(&args.uri)?;
    let request = lanceflow::embed::EmbedRequest {
        text: lanceflow::embed::TextSource {
            column: args.column,
            template: args.template,
            max_chars: args.max_chars,
        },
        to_column: args.to_column,
        replace: args.replace,
        embedder: args.model.options(),
        rows_per_task: args.rows_per_task,
        output: args
            .to
            .as_deref()
            .map(|uri| ctx.location(uri))
            .transpose()?,
    };
    let progress = progress_for(ctx.quiet);
    let report =
        lanceflow::embed::embed(&location, &request, &ctx.executor(), progress.as_ref()).await?;
    if ctx.json {
        return print_json(out, &report);
    }
    let resumed = if report.resumed_fragments > 0 {
        format!(
            ", {} fragment(s) reused from an interrupted run",
            report.resumed_fragments
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "embedded {} rows ({} tokens) into '{}' ({}-d) of {} as version {} in {:.2}s ({:.0} rows/s, {} task(s){resumed})",
        report.rows,
        report.tokens,
        report.column,
        report.dim,
        report.uri,
        report.version,
        report.seconds,
        report.rows_per_second,
        report.tasks
    )?;
    Ok(())
}

async fn index_scalar(ctx: &Context, args: ScalarIndexArgs, out: &mut dyn Write) -> Result<()> {
    use lanceflow::scalar_index::{FtsOptions, ScalarIndexRequest, ScalarIndexType};
    let location = ctx.location(&args.uri)?;
    let request = ScalarIndexRequest {
        column: args.column,
        index_type: ScalarIndexType::parse(&args.index_type)?,
        name: args.name,
        replace: args.replace && !args.no_replace,
        fragments: args.fragments,
        rows_per_segment: args.rows_per_segment,
        keep_segments: args.keep_segments,
        fts: FtsOptions {
            with_position: args.with_position,
            base_tokenizer: args.base_tokenizer,
            language: args.language,
            lower_case: args.lower_case,
            stem: args.stem,
            remove_stop_words: args.remove_stop_words,
            ascii_folding: args.ascii_folding,
            max_token_length: args.max_token_length,
        },
    };
    let progress = progress_for(ctx.quiet);
    let report = lanceflow::scalar_index::create_scalar_index(
        &location,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    if ctx.json {
        return print_json(out, &report);
    }
    writeln!(
        out,
        "built {} index '{}' on '{}' of {}: {} rows in {} fragment(s), {}, version {} \
         in {:.2}s (build {:.2}s, commit {:.2}s)",
        report.index_type.as_str(),
        report.name,
        report.column,
        report.uri,
        report.rows_indexed,
        report.fragments,
        segments_text(report.segments_built, report.segments),
        report.version,
        report.seconds,
        report.build_seconds,
        report.commit_seconds
    )?;
    Ok(())
}

/// "2 segments merged into 1" or "2 segment(s)".
pub(crate) fn segments_text(built: usize, committed: usize) -> String {
    if built == committed {
        format!("{committed} segment(s)")
    } else {
        format!("{built} segments merged into {committed}")
    }
}

async fn index_vector(ctx: &Context, args: VectorIndexArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(&args.uri)?;
    let request = vector_index_request(&args)?;
    let progress = progress_for(ctx.quiet);
    let report = lanceflow::vector_index::create_vector_index(
        &location,
        &request,
        &ctx.executor(),
        progress.as_ref(),
    )
    .await?;
    if ctx.json {
        return print_json(out, &report);
    }
    let pq = report
        .sub_vectors
        .map(|m| format!(", {m} sub-vectors"))
        .unwrap_or_default();
    let trainer = report
        .trained_by
        .map(|t| format!(" {}", t.as_str()))
        .unwrap_or_default();
    writeln!(
        out,
        "built {} index '{}' on '{}' ({} partitions{pq}, {}) over {} rows, {}, as version {} in {:.2}s (train {:.2}s{trainer}, build {:.2}s, commit {:.2}s)",
        serde_json::to_value(report.index_type)?.as_str().unwrap_or_default(),
        report.name,
        report.column,
        report.partitions,
        report.metric.as_str(),
        report.rows_indexed,
        segments_text(report.segments_built, report.segments),
        report.version,
        report.seconds,
        report.train_seconds,
        report.build_seconds,
        report.commit_seconds
    )?;
    Ok(())
}

/// Embed texts with the model `model` names, off the async runtime (the
/// model loads once per process).
pub(crate) async fn embed_texts(
    model: &crate::args::ModelArgs,
    texts: Vec<String>,
) -> Result<lanceflow::vectors::Matrix> {
    let options = model.options();
    tokio::task::spawn_blocking(move || -> Result<lanceflow::vectors::Matrix> {
        let embedder = lanceflow::embedder::shared_embedder(&options)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(embedder.embed(&refs)?)
    })
    .await?
}

async fn search_vector(ctx: &Context, args: VectorSearchArgs, out: &mut dyn Write) -> Result<()> {
    let location = ctx.location(&args.uri)?;
    let at = version_spec(&args.at);
    let queries = match (&args.query_vector, args.query_row) {
        (Some(text), _) => lanceflow::vectors::load_queries(text)?,
        (None, None) if !args.query_text.is_empty() => {
            embed_texts(&args.model, args.query_text.clone()).await?
        }
        (None, Some(row)) => {
            lanceflow::search::query_from_row(&location, at.as_ref(), args.column.as_deref(), row)
                .await?
        }
        (None, None) => {
            return Err(lanceflow::Error::InvalidInput(
                "give --query-vector FILE|JSON, --query-text TEXT or --query-row ROW".into(),
            )
            .into())
        }
    };
    let mut request = VectorSearchRequest::new(queries, args.k);
    request.column = args.column.clone();
    request.nprobes = args.nprobes;
    request.refine_factor = args.refine_factor;
    request.filter = args.filter.clone();
    request.columns = args.columns.clone();
    request.metric = args.metric.as_deref().map(Metric::parse).transpose()?;
    request.index = args.index.clone();
    let results = if args.distributed {
        lanceflow::search::search_vectors_distributed(
            &location,
            at.as_ref(),
            &request,
            &ctx.executor(),
        )
        .await?
    } else {
        lanceflow::search::search_vectors(&location, at.as_ref(), &request, ctx.workers).await?
    };
    if ctx.json {
        return print_json(out, &serde_json::json!({ "results": results.results }));
    }
    print_search(out, &results)
}

async fn search_text(ctx: &Context, args: TextSearchArgs, out: &mut dyn Write) -> Result<()> {
    use lanceflow::text_search::TextSearchRequest;
    let location = ctx.location(&args.uri)?;
    let at = version_spec(&args.at);
    let request = TextSearchRequest {
        query: args.query,
        k: args.k,
        search_columns: args.search_columns,
        phrase: args.phrase,
        filter: args.filter,
        columns: args.columns,
    };
    let results = lanceflow::text_search::search_text(&location, at.as_ref(), &request).await?;
    if ctx.json {
        return print_json(
            out,
            &serde_json::json!({ "results": [{ "query": 0, "hits": results.hits }] }),
        );
    }
    writeln!(
        out,
        "version {}, full-text over {}, {:.1} ms",
        results.version,
        results.searched.join(", "),
        results.seconds * 1000.0
    )?;
    if results.hits.is_empty() {
        writeln!(out, "  (no hits)")?;
    }
    for (rank, hit) in results.hits.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}. {:.4}  row {}  {}",
            rank + 1,
            hit.score,
            hit.row_id,
            fields_line(&hit.fields)
        )?;
    }
    Ok(())
}

fn fields_line(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", short_value(v)))
        .collect::<Vec<_>>()
        .join("  ")
}

async fn search_hybrid(ctx: &Context, args: HybridSearchArgs, out: &mut dyn Write) -> Result<()> {
    use lanceflow::text_search::{Fusion, HybridRequest, TextSearchRequest};
    let location = ctx.location(&args.uri)?;
    let at = version_spec(&args.at);
    let fusion = Fusion::parse(&args.fusion)?;
    let text = TextSearchRequest {
        query: args.query_text.clone(),
        k: args.text_k,
        search_columns: args.search_columns,
        phrase: false,
        filter: args.filter.clone(),
        columns: args.columns.clone(),
    };
    // Before loading the model: an empty query fails at once.
    lanceflow::text_search::check_query(&args.query_text)?;
    let queries = match &args.query_vector {
        Some(v) => lanceflow::vectors::load_queries(v)?,
        None => embed_texts(&args.model, vec![args.query_text.clone()]).await?,
    };
    let mut vector = VectorSearchRequest::new(queries, args.vector_k);
    vector.column = args.column;
    vector.nprobes = args.nprobes;
    vector.refine_factor = args.refine_factor;
    let request = HybridRequest {
        text,
        vector,
        k: args.k,
        fusion,
        rrf_k: args.rrf_k,
        weights: args.weights,
    };
    let results = lanceflow::text_search::search_hybrid(&location, at.as_ref(), &request).await?;
    if ctx.json {
        let mut value = serde_json::json!({ "results": [{ "query": 0, "hits": results.hits }] });
        if args.timings {
            value["timings"] = serde_json::json!({
                "vector_seconds": results.vector_seconds,
                "text_seconds": results.text_seconds,
                "seconds": results.seconds,
            });
        }
        return print_json(out, &value);
    }
    writeln!(
        out,
        "version {}, hybrid ({}), {:.1} ms",
        results.version,
        args.fusion.to_ascii_lowercase(),
        results.seconds * 1000.0
    )?;
    if args.timings {
        writeln!(
            out,
            "  legs (concurrent): vector {:.1} ms, text {:.1} ms",
            results.vector_seconds * 1000.0,
            results.text_seconds * 1000.0
        )?;
    }
    if results.hits.is_empty() {
        writeln!(out, "  (no hits)")?;
    }
    let rank = |r: Option<usize>| r.map_or("-".to_string(), |r| r.to_string());
    for (i, hit) in results.hits.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}. {:.5}  row {}  (vector #{}, text #{})  {}",
            i + 1,
            hit.score,
            hit.row_id,
            rank(hit.vector_rank),
            rank(hit.text_rank),
            fields_line(&hit.fields)
        )?;
    }
    Ok(())
}

fn print_search(out: &mut dyn Write, results: &SearchResults) -> Result<()> {
    let how = match (&results.index, results.tasks) {
        (Some(name), 0) => format!("index '{name}'"),
        (Some(name), n) => format!("index '{name}', {n} task(s)"),
        (None, 0) => "flat scan".to_string(),
        (None, n) => format!("flat scan, {n} task(s)"),
    };
    writeln!(
        out,
        "version {}, {} metric, {how}, {:.1} ms",
        results.version,
        results.metric.as_str(),
        results.seconds * 1000.0
    )?;
    for query in &results.results {
        if results.results.len() > 1 {
            writeln!(out, "query {}:", query.query)?;
        }
        if query.hits.is_empty() {
            writeln!(out, "  (no hits)")?;
        }
        for (rank, hit) in query.hits.iter().enumerate() {
            let fields: Vec<String> = hit
                .fields
                .iter()
                .map(|(k, v)| format!("{k}={}", short_value(v)))
                .collect();
            writeln!(
                out,
                "  {:>3}. {:.6}  row {}  {}",
                rank + 1,
                hit.distance,
                hit.row_id,
                fields.join("  ")
            )?;
        }
    }
    Ok(())
}

fn short_value(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// A size such as `512MiB`, `2GiB`, `1.5GB` or a plain byte count.
pub(crate) fn parse_size(text: &str) -> lanceflow::Result<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(lanceflow::Error::InvalidInput(format!(
                "unknown size unit '{other}' in '{text}'; write e.g. 512MiB or 2GiB"
            )))
        }
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok((n * factor) as usize),
        _ => Err(lanceflow::Error::InvalidInput(format!(
            "'{text}' is not a size; write e.g. 512MiB or 2GiB"
        ))),
    }
}

/// The API key `serve` requires, from an environment variable or a file.
fn api_key(args: &ServeArgs) -> lanceflow::Result<Option<String>> {
    let key = match (&args.api_key_env, &args.api_key_file) {
        (Some(name), _) => Some(std::env::var(name).map_err(|_| {
            lanceflow::Error::InvalidInput(format!(
                "--api-key-env {name}: the environment variable {name} is not set; export it \
                 or use --api-key-file FILE"
            ))
        })?),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| {
                    lanceflow::Error::InvalidInput(format!(
                        "--api-key-file {}: {e}",
                        file.display()
                    ))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        (None, None) => None,
    };
    match key.map(|k| k.trim().to_string()) {
        Some(k) if k.is_empty() => Err(lanceflow::Error::InvalidInput(
            "the API key is empty; set a non-empty key (e.g. `openssl rand -hex 32`)".into(),
        )),
        other => Ok(other),
    }
}

async fn serve(ctx: &Context, args: ServeArgs, out: &mut dyn Write) -> Result<()> {
    use crate::serve::{bind, serve_until, shutdown_signal, ServeOptions, ServeState};
    if args.max_concurrency == 0 {
        return Err(
            lanceflow::Error::InvalidInput("--max-concurrency must be at least 1".into()).into(),
        );
    }
    if !(args.request_timeout.is_finite() && args.request_timeout > 0.0) {
        return Err(lanceflow::Error::InvalidInput(
            "--request-timeout must be a positive number of seconds".into(),
        )
        .into());
    }
    let options = ServeOptions {
        api_key: api_key(&args)?,
        max_concurrency: args.max_concurrency,
        max_body_bytes: args.max_body_bytes,
        request_timeout: std::time::Duration::from_secs_f64(args.request_timeout),
    };
    if let Some(size) = &args.cache_size {
        lanceflow::storage::configure_index_cache(parse_size(size)?)?;
    }
    let location = ctx.location(&args.uri)?;
    let at = version_spec(&args.at);
    let model = (!args.no_model).then(|| args.model.options());
    let retriever = lanceflow::retrieval::Retriever::open(location, at.as_ref(), model).await?;
    let (listener, addr) = bind(&args.addr).await?;
    let version = retriever.version();
    let auth = if options.api_key.is_some() {
        "API key required"
    } else {
        "no API key"
    };
    if ctx.json {
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({
                "url": format!("http://{addr}"), "uri": args.uri, "version": version,
            }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "serving {} version {version} on http://{addr} ({auth}; Ctrl-C stops)",
            args.uri
        )?;
    }
    out.flush()?;
    let state = ServeState::new(Arc::new(retriever), options);
    serve_until(listener, state, shutdown_signal()).await?;
    if !ctx.json {
        writeln!(out, "stopped")?;
    }
    Ok(())
}
