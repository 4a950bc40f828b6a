//! Ingest: raw files into a Lance dataset, as one new version.
//!
//! * **plan** — resolve inputs and their format, infer or check the schema
//!   against the dataset pinned at its current version, one task per file;
//! * **execute** — a worker streams one file into uncommitted fragments of at
//!   most `max_rows_per_file` rows;
//! * **commit** — the driver commits all fragments as one `Append` (or
//!   `Overwrite` when creating/replacing). If any task failed nothing is
//!   committed and the dataset's latest version is unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_schema::{Schema as ArrowSchema, SchemaRef};
use lance::dataset::fragment::write::FragmentCreateBuilder;
use lance::dataset::transaction::Operation;
use lance::dataset::write::CommitBuilder;
use lance::dataset::Dataset;
use lance::dataset::{WriteMode as LanceWriteMode, WriteParams};
use lance::datatypes::Schema as LanceSchema;
use lance_file::version::LanceFileVersion;
use lance_table::format::Fragment;
use serde::{Deserialize, Serialize};

pub mod input;
pub mod layout;

pub use layout::{Layout, StorageVersion};

use crate::dataset::commit;
use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::progress::{note, Progress};
use crate::spine::Executor;
use crate::spine::{run_tasks, DistributedOp};
use crate::storage::{Location, VersionSpec};
use input::{column_list, InputFormat, LineRange, ReadOptions, BATCH_ROWS};

/// Lance's default fragment size, used when `--max-rows-per-file` is not given.
pub const DEFAULT_MAX_ROWS_PER_FILE: usize = 1024 * 1024;

/// What to do when the dataset exists (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Create a new dataset; fail if one exists.
    Create,
    /// Add rows to an existing dataset; fail if there is none.
    Append,
    /// Replace the dataset's contents (a new version; old ones stay readable).
    Overwrite,
}

impl WriteMode {
    /// Parse `create|append|overwrite`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "create" => Ok(Self::Create),
            "append" => Ok(Self::Append),
            "overwrite" => Ok(Self::Overwrite),
            other => bail_invalid!("unknown mode '{other}'; use create, append or overwrite"),
        }
    }
}

/// An ingest request, as the CLI or an API caller states it.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// Input files (directories are expanded to the files inside, sorted).
    pub inputs: Vec<PathBuf>,
    /// Input format; guessed from file names when `None`.
    pub format: Option<InputFormat>,
    /// Create, append or overwrite.
    pub mode: WriteMode,
    /// Rows per fragment at most (fragments are the unit of parallelism).
    pub max_rows_per_file: usize,
    /// Keep only these columns of the input.
    pub columns: Option<Vec<String>>,
    /// A key naming this job: when a version among the latest
    /// [`commit::LOOKBACK`] was committed with the same key, the ingest
    /// writes nothing and reports that version (a re-run after a lost or
    /// killed commit cannot append the rows twice).
    pub idempotency_key: Option<String>,
    /// File format and stable row ids of a new dataset (see [`layout`]).
    pub layout: Layout,
}

impl IngestRequest {
    /// A request with default options.
    pub fn new(inputs: Vec<PathBuf>, mode: WriteMode) -> Self {
        Self {
            inputs,
            format: None,
            mode,
            max_rows_per_file: DEFAULT_MAX_ROWS_PER_FILE,
            columns: None,
            idempotency_key: None,
            layout: Layout::default(),
        }
    }
}

/// One ingest task: stream one input file into uncommitted fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestTask {
    /// Where to write.
    pub location: Location,
    /// The input file.
    pub input: PathBuf,
    /// Only these lines of it (a large JSONL file is split over several tasks).
    pub range: Option<LineRange>,
    /// Its format.
    pub format: InputFormat,
    /// The schema every row must have (the dataset's when appending).
    pub schema: ArrowSchema,
    /// Reject fields the schema does not know.
    pub strict: bool,
    /// When appending: the pinned version whose schema (field ids) to write with.
    pub append_to_version: Option<u64>,
    /// Lance file format version to write (the dataset's when appending).
    pub storage_version: Option<LanceFileVersion>,
    /// Rows per fragment at most.
    pub max_rows_per_file: usize,
}

/// What one ingest task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestTaskOutput {
    /// The input file.
    pub input: PathBuf,
    /// Uncommitted fragments (ids are assigned at commit).
    pub fragments: Vec<Fragment>,
    /// Rows written.
    pub rows: u64,
    /// Bytes of input read.
    pub input_bytes: u64,
}

/// The plan: everything the driver decided before any data moved.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    /// Target dataset.
    pub location: Location,
    /// Create, append or overwrite.
    pub mode: WriteMode,
    /// The version the plan was made against (0: no dataset yet).
    pub read_version: u64,
    /// The schema rows are written with.
    pub schema: SchemaRef,
    /// One task per input file.
    pub tasks: Vec<IngestTask>,
    /// Stored with the commit (see [`IngestRequest::idempotency_key`]).
    pub idempotency_key: Option<String>,
    /// The file format every task writes (and a new dataset records).
    pub storage_version: LanceFileVersion,
    /// Stable row ids for a new dataset (an append keeps the dataset's).
    pub stable_row_ids: bool,
}

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Dataset URI.
    pub uri: String,
    /// The version the ingest committed.
    pub version: u64,
    /// The version it was planned against (0: none).
    pub read_version: u64,
    /// Rows written by this ingest.
    pub rows_written: u64,
    /// Rows in the dataset after the commit.
    pub total_rows: u64,
    /// Fragments written by this ingest.
    pub fragments_written: usize,
    /// Input files read.
    pub inputs: usize,
    /// Tasks the work was split into.
    pub tasks: usize,
    /// Bytes of input read.
    pub input_bytes: u64,
    /// Wall-clock seconds, plan to commit.
    pub seconds: f64,
    /// `rows_written / seconds`.
    pub rows_per_second: f64,
    /// True when an earlier run with the same idempotency key had committed
    /// (`version`); this run wrote nothing.
    #[serde(default)]
    pub already_applied: bool,
}

/// The ingest operation as the worker knows it.
pub struct IngestOp;

impl DistributedOp for IngestOp {
    const NAME: &'static str = "ingest";
    type Task = IngestTask;
    type Output = IngestTaskOutput;

    fn label(task: &IngestTask) -> String {
        match &task.range {
            Some(r) => format!("{} from line {}", task.input.display(), r.first_line),
            None => task.input.display().to_string(),
        }
    }

    async fn execute(task: IngestTask) -> Result<IngestTaskOutput> {
        execute(task).await
    }
}

/// Expand directories and check every input exists.
fn resolve_inputs(
    inputs: &[PathBuf],
    format: Option<InputFormat>,
) -> Result<Vec<(PathBuf, InputFormat)>> {
    ensure_invalid!(
        !inputs.is_empty(),
        "no input files given; name at least one JSONL, Parquet, CSV or Arrow file"
    );
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| {
                    Error::InvalidInput(format!("cannot list '{}': {e}", input.display()))
                })?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| match format {
                    Some(_) => !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.')),
                    None => InputFormat::from_path(p).is_some(),
                })
                .collect();
            inside.sort();
            if inside.is_empty() {
                bail_invalid!(
                    "directory '{}' holds no input files (.jsonl, .parquet, .csv, .arrow)",
                    input.display()
                );
            }
            files.extend(inside);
        } else if input.exists() {
            files.push(input.clone());
        } else {
            return Err(Error::NotFound(format!(
                "input file '{}' does not exist; check the path",
                input.display()
            )));
        }
    }
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let fmt = match format.or_else(|| InputFormat::from_path(&file)) {
            Some(f) => f,
            None => bail_invalid!(
                "cannot tell the format of '{}' from its name; pass --format jsonl|parquet|csv|arrow",
                file.display()
            ),
        };
        out.push((file, fmt));
    }
    let first = out[0].1;
    if let Some((file, other)) = out.iter().find(|(_, f)| *f != first) {
        bail_invalid!(
            "inputs mix formats ({} and {} in '{}'); ingest one format per command or pass --format",
            first.name(),
            other.name(),
            file.display()
        );
    }
    Ok(out)
}

/// Plan an ingest against the dataset's current version, for an executor
/// running `parallelism` tasks at once.
#[tracing::instrument(level = "info", skip_all, fields(uri = %location.uri()))]
pub async fn plan(
    location: &Location,
    request: &IngestRequest,
    parallelism: usize,
) -> Result<IngestPlan> {
    ensure_invalid!(
        request.max_rows_per_file > 0,
        "--max-rows-per-file must be at least 1 (it is the largest number of rows in one fragment)"
    );
    let files = resolve_inputs(&request.inputs, request.format)?;
    let existing = location.open_if_exists().await?;
    check_mode(location, request.mode, existing.as_ref())?;
    let layout = layout::resolve(
        &request.layout,
        request.mode == WriteMode::Append,
        existing.as_ref(),
    )?;

    // Each input's own schema, projected to --columns.
    let mut input_schemas = Vec::with_capacity(files.len());
    for (file, format) in &files {
        let schema = input::infer_schema(file, *format)?;
        let schema = match &request.columns {
            Some(columns) => project(file, &schema, columns)?,
            None => schema.as_ref().clone(),
        };
        input_schemas.push(schema);
    }
    let strict = request.columns.is_none();

    let (schema, read_version, append_to_version) = match (request.mode, &existing) {
        (WriteMode::Append, Some(ds)) => {
            let target = ArrowSchema::from(ds.schema());
            for ((file, _), schema) in files.iter().zip(&input_schemas) {
                check_fits(file, schema, &target)?;
            }
            let version = ds.version().version;
            (target, version, Some(version))
        }
        _ => {
            let merged = ArrowSchema::try_merge(input_schemas.iter().cloned()).map_err(|e| {
                Error::InvalidInput(format!(
                    "the input files disagree on column types ({e}); ingest them separately or pick \
                     common columns with --columns"
                ))
            })?;
            ensure_invalid!(!merged.fields().is_empty(), "the input has no columns");
            let version = existing.as_ref().map(|d| d.version().version).unwrap_or(0);
            (merged, version, None)
        }
    };
    // Fail now, not in a worker, when Lance cannot store a column type.
    LanceSchema::try_from(&schema).map_err(|e| {
        Error::InvalidInput(format!("these columns cannot be stored in Lance: {e}"))
    })?;

    let per_file_tasks = if parallelism > 1 {
        (2 * parallelism).div_ceil(files.len())
    } else {
        1
    };
    let mut tasks = Vec::new();
    for (input, format) in files {
        for range in split_for_tasks(&input, format, request.max_rows_per_file, per_file_tasks)? {
            tasks.push(IngestTask {
                location: location.clone(),
                input: input.clone(),
                range,
                format,
                schema: schema.clone(),
                strict,
                append_to_version,
                storage_version: Some(layout.storage_version),
                max_rows_per_file: request.max_rows_per_file,
            });
        }
    }
    Ok(IngestPlan {
        location: location.clone(),
        mode: request.mode,
        read_version,
        schema: Arc::new(schema),
        tasks,
        idempotency_key: request.idempotency_key.clone(),
        storage_version: layout.storage_version,
        stable_row_ids: layout.stable_row_ids,
    })
}

/// `mode` against what is at `location`: create needs nothing there, append
/// needs a dataset.
fn check_mode(location: &Location, mode: WriteMode, existing: Option<&Dataset>) -> Result<()> {
    match (mode, existing) {
        (WriteMode::Create, Some(ds)) => Err(Error::AlreadyExists(format!(
            "a dataset already exists at '{}' (version {}); use --mode append to add rows or \
             --mode overwrite to replace them",
            location.uri(),
            ds.version().version
        ))),
        (WriteMode::Append, None) => Err(Error::NotFound(format!(
            "no dataset at '{}' to append to; create it first with --mode create",
            location.uri()
        ))),
        _ => Ok(()),
    }
}

/// Split a large JSONL file into line ranges of whole fragments, so one big
/// file still keeps every worker busy and fragments stay full-sized.
fn split_for_tasks(
    input: &Path,
    format: InputFormat,
    max_rows_per_file: usize,
    wanted: usize,
) -> Result<Vec<Option<LineRange>>> {
    if format != InputFormat::Jsonl || wanted <= 1 {
        return Ok(vec![None]);
    }
    let max_rows = max_rows_per_file as u64;
    let fragments = input::estimate_lines(input)?.div_ceil(max_rows);
    let chunks = fragments.min(wanted as u64);
    if chunks <= 1 {
        return Ok(vec![None]);
    }
    let lines_per_task = fragments.div_ceil(chunks) * max_rows;
    let ranges = input::split_lines(input, lines_per_task)?;
    if ranges.len() <= 1 {
        return Ok(vec![None]);
    }
    Ok(ranges.into_iter().map(Some).collect())
}

fn project(file: &Path, schema: &ArrowSchema, columns: &[String]) -> Result<ArrowSchema> {
    let mut fields = Vec::with_capacity(columns.len());
    for name in columns {
        match schema.field_with_name(name) {
            Ok(f) => fields.push(f.clone()),
            Err(_) => bail_invalid!(
                "--columns names '{name}', which '{}' does not have (its columns: {})",
                file.display(),
                column_list(schema)
            ),
        }
    }
    Ok(ArrowSchema::new(fields))
}

fn check_fits(file: &Path, input: &ArrowSchema, target: &ArrowSchema) -> Result<()> {
    let extra: Vec<&str> = input
        .fields()
        .iter()
        .filter(|f| target.field_with_name(f.name()).is_err())
        .map(|f| f.name().as_str())
        .collect();
    if !extra.is_empty() {
        bail_invalid!(
            "'{}' does not match the dataset's schema: column(s) {} are not in the dataset (its \
             columns: {}); remove them, pick columns with --columns, or write a new dataset with \
             --mode overwrite",
            file.display(),
            extra.join(", "),
            column_list(target)
        );
    }
    if let Some(missing) = target
        .fields()
        .iter()
        .find(|f| !f.is_nullable() && input.field_with_name(f.name()).is_err())
    {
        bail_invalid!(
            "'{}' lacks column '{}', which the dataset requires",
            file.display(),
            missing.name()
        );
    }
    Ok(())
}

/// Execute one ingest task: stream the file into uncommitted fragments.
#[tracing::instrument(level = "debug", skip_all, fields(input = %task.input.display()))]
pub async fn execute(task: IngestTask) -> Result<IngestTaskOutput> {
    let location = &task.location;
    location.pin_memory_store().await?;
    let lance_schema = match task.append_to_version {
        Some(v) => location
            .open(Some(&VersionSpec::Number(v)))
            .await?
            .schema()
            .clone(),
        None => LanceSchema::try_from(&task.schema)
            .map_err(|e| Error::InvalidInput(format!("schema cannot be stored in Lance: {e}")))?,
    };
    let input_bytes = match task.range {
        Some(r) => r.end - r.start,
        None => std::fs::metadata(&task.input).map(|m| m.len()).unwrap_or(0),
    };
    let options = ReadOptions {
        target: Arc::new(task.schema.clone()),
        strict: task.strict,
        batch_rows: BATCH_ROWS.min(task.max_rows_per_file.max(1)),
    };
    let reader = input::open_reader(&task.input, task.format, &options, task.range)?;
    let target = FragmentTarget {
        schema: &lance_schema,
        max_rows_per_file: task.max_rows_per_file,
        append: task.append_to_version.is_some(),
        storage_version: task.storage_version,
    };
    let (fragments, rows) = write_fragments(location, &target, reader, &task.input).await?;
    Ok(IngestTaskOutput {
        input: task.input,
        fragments,
        rows,
        input_bytes,
    })
}

/// Where [`write_fragments`] writes: the dataset's schema, fragment size,
/// and for an append the existing dataset's file format.
struct FragmentTarget<'a> {
    schema: &'a LanceSchema,
    max_rows_per_file: usize,
    append: bool,
    storage_version: Option<LanceFileVersion>,
}

/// Stream `reader` into uncommitted fragments (ids 0: assigned at commit,
/// so tasks cannot collide); the fragments and their rows. `source` names
/// the input in errors.
async fn write_fragments(
    location: &Location,
    target: &FragmentTarget<'_>,
    reader: Box<dyn arrow_array::RecordBatchReader + Send>,
    source: &Path,
) -> Result<(Vec<Fragment>, u64)> {
    let (reader, first_error) = input::remember_errors(reader);
    let params = WriteParams {
        max_rows_per_file: target.max_rows_per_file,
        mode: if target.append {
            LanceWriteMode::Append
        } else {
            LanceWriteMode::Create
        },
        store_params: Some(location.store_params()),
        session: Some(location.session()),
        data_storage_version: target.storage_version,
        ..Default::default()
    };
    let written = FragmentCreateBuilder::new(location.uri())
        .schema(target.schema)
        .write_params(&params)
        .write_fragments(reader)
        .await;
    let mut fragments = match written {
        Ok(f) => f,
        Err(e) => {
            // An error of the input (bad line, wrong type) beats the storage
            // layer's wrapping of it.
            if let Some(message) = first_error.take() {
                return Err(Error::InvalidInput(message));
            }
            return Err(
                location.lance_error(&format!("write fragments from '{}'", source.display()), e)
            );
        }
    };
    for fragment in &mut fragments {
        fragment.id = 0;
    }
    let rows = fragments
        .iter()
        .map(|f| f.physical_rows.unwrap_or(0) as u64)
        .sum();
    Ok((fragments, rows))
}

/// Commit every task's fragments as one new version.
#[tracing::instrument(level = "info", skip_all, fields(uri = %plan.location.uri()))]
pub async fn commit(plan: &IngestPlan, outputs: Vec<IngestTaskOutput>) -> Result<(u64, u64)> {
    let rows: u64 = outputs.iter().map(|o| o.rows).sum();
    let fragments: Vec<Fragment> = outputs.into_iter().flat_map(|o| o.fragments).collect();
    ensure_invalid!(
        !fragments.is_empty() && rows > 0,
        "the input holds no rows; nothing was written"
    );
    let operation = match plan.mode {
        WriteMode::Append => Operation::Append { fragments },
        WriteMode::Create | WriteMode::Overwrite => Operation::Overwrite {
            fragments,
            schema: LanceSchema::try_from(plan.schema.as_ref()).map_err(|e| {
                Error::InvalidInput(format!("schema cannot be stored in Lance: {e}"))
            })?,
            config_upsert_values: None,
            initial_bases: None,
        },
    };
    let location = &plan.location;
    location.pin_memory_store().await?;
    let mut builder = CommitBuilder::new(location.uri())
        .with_store_params(location.store_params())
        .with_session(location.session());
    if plan.mode != WriteMode::Append {
        // A new dataset (or a replaced one) records its layout.
        builder = builder
            .use_stable_row_ids(plan.stable_row_ids)
            .with_storage_format(plan.storage_version);
    }
    let dataset = commit::commit(
        location,
        builder,
        plan.read_version,
        operation,
        "commit ingest",
        plan.idempotency_key.as_deref(),
    )
    .await?;
    let total = dataset
        .count_rows(None)
        .await
        .map_err(|e| location.lance_error("count rows", e))? as u64;
    Ok((dataset.version().version, total))
}

/// Plan, run every task on `executor`, commit once.
pub async fn ingest(
    location: &Location,
    request: &IngestRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let started = Instant::now();
    if let Some(done) = already_applied(
        location,
        request.idempotency_key.as_deref(),
        started,
        progress,
    )
    .await?
    {
        return Ok(done);
    }
    let plan = plan(location, request, executor.parallelism()).await?;
    note(
        progress,
        IngestOp::NAME,
        format!(
            "{} task(s) → {} (planned against version {})",
            plan.tasks.len(),
            location.uri(),
            plan.read_version
        ),
    );
    let outputs = run_tasks::<IngestOp>(executor, &plan.tasks, progress).await?;
    let rows_written: u64 = outputs.iter().map(|o| o.rows).sum();
    let fragments_written = outputs.iter().map(|o| o.fragments.len()).sum();
    let input_bytes = outputs.iter().map(|o| o.input_bytes).sum();
    let (version, total_rows) = commit(&plan, outputs).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(IngestReport {
        uri: location.uri().to_string(),
        version,
        read_version: plan.read_version,
        rows_written,
        total_rows,
        fragments_written,
        inputs: {
            let mut files: Vec<&PathBuf> = plan.tasks.iter().map(|t| &t.input).collect();
            files.dedup();
            files.len()
        },
        tasks: plan.tasks.len(),
        input_bytes,
        seconds,
        rows_per_second: rows_written as f64 / seconds.max(1e-9),
        already_applied: false,
    })
}

/// The report of a job whose idempotency key was already committed (after
/// checking the key), or `None` when there is work to do.
async fn already_applied(
    location: &Location,
    key: Option<&str>,
    started: Instant,
    progress: &dyn Progress,
) -> Result<Option<IngestReport>> {
    let Some(key) = key else {
        return Ok(None);
    };
    commit::check_idempotency_key(key)?;
    let Some(done) = commit::committed_with_key(location, key).await? else {
        return Ok(None);
    };
    let version = done.version().version;
    note(
        progress,
        IngestOp::NAME,
        format!("idempotency key '{key}' was committed in version {version}: nothing to do"),
    );
    let latest = location.open(None).await?;
    let total_rows = latest
        .count_rows(None)
        .await
        .map_err(|e| location.lance_error("count rows", e))? as u64;
    Ok(Some(IngestReport {
        uri: location.uri().to_string(),
        version,
        read_version: latest.version().version,
        rows_written: 0,
        total_rows,
        fragments_written: 0,
        inputs: 0,
        tasks: 0,
        input_bytes: 0,
        seconds: started.elapsed().as_secs_f64(),
        rows_per_second: 0.0,
        already_applied: true,
    }))
}

/// How [`write_stream`] writes: the mode, fragment size and job key of an
/// ingest, for data that is already Arrow in memory.
#[derive(Debug, Clone)]
pub struct StreamWrite {
    /// create, append or overwrite.
    pub mode: WriteMode,
    /// Most rows in one fragment.
    pub max_rows_per_file: usize,
    /// As [`IngestRequest::idempotency_key`].
    pub idempotency_key: Option<String>,
    /// As [`IngestRequest::layout`].
    pub layout: Layout,
    /// Select the given data's columns by these names and cast them to
    /// these types first (lance-ray's `schema=`): the schema a new dataset
    /// gets, or what an append's data is read as.
    pub schema: Option<ArrowSchema>,
}

impl StreamWrite {
    /// A write in `mode` with default options.
    pub fn new(mode: WriteMode) -> Self {
        Self {
            mode,
            max_rows_per_file: DEFAULT_MAX_ROWS_PER_FILE,
            idempotency_key: None,
            layout: Layout::default(),
            schema: None,
        }
    }
}

/// Write an Arrow stream (the Python package's tables and record batch
/// readers, handed over through the Arrow C data interface) as one new
/// version: fragments written here as it streams, then one commit with the
/// same modes, schema checks and idempotency key as [`ingest`]. No tasks:
/// the data is in this process already (a Ray Dataset goes through files
/// and `ingest`, whose tasks run on the workers).
pub async fn write_stream(
    location: &Location,
    source: Box<dyn arrow_array::RecordBatchReader + Send>,
    request: &StreamWrite,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let started = Instant::now();
    if let Some(done) = already_applied(
        location,
        request.idempotency_key.as_deref(),
        started,
        progress,
    )
    .await?
    {
        return Ok(done);
    }
    let existing = location.open_if_exists().await?;
    check_mode(location, request.mode, existing.as_ref())?;
    let staged = stage(location, source, request, existing.as_ref()).await?;
    commit_staged(
        location,
        request.mode,
        vec![staged],
        request.idempotency_key.as_deref(),
        started,
    )
    .await
}

/// Fragments written from Arrow data but not committed: what
/// [`stage_stream`] returns (in any process) and [`commit_staged`] commits,
/// many at once (lance-ray's `LanceFragmentWriter` / `LanceFragmentCommitter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedFragments {
    /// The fragments (ids assigned at commit).
    pub fragments: Vec<Fragment>,
    /// The schema they were written with: the dataset's when it existed and
    /// the data fitted it (field ids of that dataset), else the data's own.
    pub schema: ArrowSchema,
    /// Rows written.
    pub rows: u64,
    /// The dataset version whose schema they follow (0: none, the data's own).
    pub dataset_version: u64,
    /// The file format written.
    pub storage_version: LanceFileVersion,
    /// Stable row ids (for a new dataset).
    pub stable_row_ids: bool,
}

/// Write an Arrow stream into uncommitted fragments of the dataset at
/// `location` (which need not exist). The request's mode says what the
/// fragments are for: `Append` writes with the dataset's schema and format
/// (which must exist); `Create` / `Overwrite` with the data's own schema.
pub async fn stage_stream(
    location: &Location,
    source: Box<dyn arrow_array::RecordBatchReader + Send>,
    request: &StreamWrite,
) -> Result<StagedFragments> {
    let existing = location.open_if_exists().await?;
    if request.mode == WriteMode::Append {
        check_mode(location, request.mode, existing.as_ref())?;
    }
    stage(location, source, request, existing.as_ref()).await
}

async fn stage(
    location: &Location,
    source: Box<dyn arrow_array::RecordBatchReader + Send>,
    request: &StreamWrite,
    existing: Option<&Dataset>,
) -> Result<StagedFragments> {
    ensure_invalid!(
        request.max_rows_per_file > 0,
        "--max-rows-per-file must be at least 1 (it is the largest number of rows in one fragment)"
    );
    let append = request.mode == WriteMode::Append;
    let layout = layout::resolve(&request.layout, append, existing)?;
    let label = Path::new("the given data");
    let source = match &request.schema {
        Some(wanted) => {
            let given = source.schema();
            if let Some(missing) = wanted
                .fields()
                .iter()
                .find(|f| given.field_with_name(f.name()).is_err())
            {
                bail_invalid!(
                    "the given schema names column '{}', which the data does not have; the data \
                     has: {}",
                    missing.name(),
                    column_list(given.as_ref())
                );
            }
            input::conform(source, Arc::new(wanted.clone()), label, false)
        }
        None => source,
    };
    let given = ArrowSchema::new(source.schema().fields().clone());
    let (schema, dataset_version) = match (append, existing) {
        (true, Some(ds)) => {
            let target = ArrowSchema::from(ds.schema());
            check_fits(label, &given, &target)?;
            (target, ds.version().version)
        }
        _ => {
            ensure_invalid!(!given.fields().is_empty(), "the data has no columns");
            (given, 0)
        }
    };
    let lance_schema = LanceSchema::try_from(&schema).map_err(|e| {
        Error::InvalidInput(format!("these columns cannot be stored in Lance: {e}"))
    })?;
    let schema = Arc::new(schema);
    let reader = input::conform(source, schema.clone(), label, true);
    let target = FragmentTarget {
        schema: &lance_schema,
        max_rows_per_file: request.max_rows_per_file,
        append: dataset_version > 0,
        storage_version: Some(layout.storage_version),
    };
    let (fragments, rows) = write_fragments(location, &target, reader, label).await?;
    Ok(StagedFragments {
        fragments,
        schema: schema.as_ref().clone(),
        rows,
        dataset_version,
        storage_version: layout.storage_version,
        stable_row_ids: layout.stable_row_ids,
    })
}

/// Commit staged fragments (from one or many [`stage_stream`] calls) as one
/// new version in `mode`: `Append` needs them written with the dataset's
/// schema (staged in append mode), `Create` a dataset that does not exist
/// yet; `Create` / `Overwrite` need every part written with one schema.
pub async fn commit_staged(
    location: &Location,
    mode: WriteMode,
    staged: Vec<StagedFragments>,
    idempotency_key: Option<&str>,
    started: Instant,
) -> Result<IngestReport> {
    let Some(first) = staged.first() else {
        bail_invalid!("nothing was staged: the input holds no rows; nothing was written");
    };
    let (schema, storage_version, stable_row_ids) = (
        first.schema.clone(),
        first.storage_version,
        first.stable_row_ids,
    );
    for part in &staged {
        ensure_invalid!(
            part.schema == schema && part.storage_version == storage_version,
            "the staged fragments were written with different schemas or formats; write every \
             part with the same schema (and mode) to commit them together"
        );
    }
    let existing = location.open_if_exists().await?;
    check_mode(location, mode, existing.as_ref())?;
    let read_version = existing.as_ref().map_or(0, |d| d.version().version);
    if mode == WriteMode::Append {
        let Some(ds) = existing.as_ref() else {
            return Err(Error::internal(
                "append without a dataset passed the mode check",
            ));
        };
        // Field ids are the dataset's only when staged against it; a schema
        // change since (new or dropped columns) would misplace them.
        ensure_invalid!(
            staged.iter().all(|p| p.dataset_version > 0)
                && ArrowSchema::from(ds.schema()) == schema,
            "these fragments were not written for appending to '{}' as it is now (stage them in \
             append mode, after any schema change); nothing was committed",
            location.uri()
        );
    }
    let rows_written = staged.iter().map(|p| p.rows).sum();
    let fragments: Vec<Fragment> = staged.into_iter().flat_map(|p| p.fragments).collect();
    let fragments_written = fragments.len();
    let plan = IngestPlan {
        location: location.clone(),
        mode,
        read_version,
        schema: Arc::new(schema),
        tasks: Vec::new(),
        idempotency_key: idempotency_key.map(str::to_string),
        storage_version,
        stable_row_ids,
    };
    let output = IngestTaskOutput {
        input: PathBuf::from("the given data"),
        fragments,
        rows: rows_written,
        input_bytes: 0,
    };
    let (version, total_rows) = commit(&plan, vec![output]).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(IngestReport {
        uri: location.uri().to_string(),
        version,
        read_version,
        rows_written,
        total_rows,
        fragments_written,
        inputs: 1,
        tasks: 0,
        input_bytes: 0,
        seconds,
        rows_per_second: rows_written as f64 / seconds.max(1e-9),
        already_applied: false,
    })
}

crate::error::from_str_by_parse!(WriteMode);
