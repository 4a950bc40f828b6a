//! `add-columns`: data evolution. New columns computed from existing ones
//! (SQL expressions, or a transform the host process runs: the Python
//! package's callables), or given row by row (`merge_columns`: rows keyed by
//! their row address), written fragment by fragment without rewriting the
//! existing data.
//!
//! Plan → tasks → execute → commit, like `embed` (the same lance path: each
//! fragment's new data file written uncommitted with
//! `FileFragment::add_columns`):
//! - **plan** (driver): pin a version, check the new names (not taken, not
//!   repeated) and the expressions (a typo fails here, naming the
//!   expression), learn a host transform's output schema from a few rows,
//!   and cut the fragments into contiguous groups;
//! - **execute** (worker): for each fragment of its group, compute the new
//!   columns and write their data file; nothing is committed;
//! - **commit** (driver): one `Merge` with the new schema: every fragment
//!   gains its data file in one new version, or nothing lands.
//!
//! A host transform's batches are checked as they come back: one row per
//! input row and the columns of the planned schema (cast where the types
//! differ but convert), else the task fails and nothing is committed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arrow_array::{Array, RecordBatch, RecordBatchIterator, UInt32Array, UInt64Array};
use arrow_schema::{ArrowError, Field, Schema as ArrowSchema};
use futures::TryStreamExt;
use lance::dataset::fragment::FileFragment;
use lance::dataset::transaction::Operation;
use lance::dataset::write::CommitBuilder;
use lance::dataset::{BatchUDF, NewColumnTransform};
use lance::Dataset;
use lance_table::format::Fragment;
use serde::{Deserialize, Serialize};

use crate::dataset::columns::require_column;
use crate::dataset::commit;
use crate::dataset::fragments::{contiguous_runs, fragment_ranges, fragment_rows, fragments_label};
use crate::error::{bail_invalid, ensure_invalid, without_source_location, Error, Result};
use crate::progress::{note, Progress};
use crate::spine::{run_tasks, DistributedOp, Executor};
use crate::storage::{Location, VersionSpec};

/// Rows per batch a transform sees (lance-ray's default).
pub const DEFAULT_BATCH_SIZE: u32 = 1024;
/// The most rows per batch.
pub const MAX_BATCH_SIZE: u32 = 1 << 20;
/// Rows of the sample a host transform's output schema is learnt from.
const SAMPLE_ROWS: usize = 8;
/// Columns a row-keyed input may carry besides the new ones.
const ROW_ADDRESS: &str = "_rowaddr";
const METADATA_COLUMNS: [&str; 3] = ["_rowaddr", "_fragid", "_rowid"];

/// A function over record batches: one output row per input row.
pub type BatchFn = Arc<dyn Fn(&RecordBatch) -> Result<RecordBatch> + Send + Sync>;

/// Turns a host transform's payload into a function. The Python package
/// registers one (its payload is a pickled callable); a process without a
/// host cannot run host transforms.
pub trait TransformHost: Send + Sync + 'static {
    /// The function `payload` describes.
    fn load(&self, payload: &str) -> Result<BatchFn>;
}

static HOST: OnceLock<Box<dyn TransformHost>> = OnceLock::new();

/// Register this process's transform host (the first one stays).
pub fn set_transform_host(host: impl TransformHost) {
    let _ = HOST.set(Box::new(host));
}

fn load_host_transform(payload: &str) -> Result<BatchFn> {
    match HOST.get() {
        Some(host) => host.load(payload),
        None => Err(Error::NotSupported(
            "a transform written in Python runs only through the lanceflow Python package \
             (lanceflow.add_columns or lanceflow.ray.add_columns); from the command line, use \
             SQL expressions (--expr NAME=EXPR)"
                .into(),
        )),
    }
}

/// How the new columns are computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnTransform {
    /// SQL expressions over existing columns: (new column, expression),
    /// e.g. `("n_chars", "length(text)")`.
    Sql(Vec<(String, String)>),
    /// A transform the host process runs over batches of `read_columns`.
    Host(HostTransform),
}

/// A transform the engine cannot read, only hand to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostTransform {
    /// What [`TransformHost::load`] takes.
    pub payload: String,
    /// Columns the transform reads (default: every column).
    #[serde(default)]
    pub read_columns: Option<Vec<String>>,
    /// The new columns (default: learnt from the transform's output on a
    /// few rows when planning).
    #[serde(default)]
    pub output_schema: Option<ArrowSchema>,
}

/// What to add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddColumnsRequest {
    /// How the new columns are computed.
    pub transform: ColumnTransform,
    /// Read this version (default: the latest).
    #[serde(default)]
    pub version: Option<u64>,
    /// Rows per batch the transform sees.
    pub batch_size: u32,
    /// Rows per task (default: one task per worker).
    #[serde(default)]
    pub rows_per_task: Option<u64>,
}

impl AddColumnsRequest {
    /// New columns computed by `transform`, with the default batch size.
    pub fn new(transform: ColumnTransform) -> Self {
        Self {
            transform,
            version: None,
            batch_size: DEFAULT_BATCH_SIZE,
            rows_per_task: None,
        }
    }

    /// New columns from SQL expressions `name=expr` (as the CLI takes them).
    pub fn sql<S: AsRef<str>>(assignments: &[S]) -> Result<Self> {
        let mut pairs = Vec::with_capacity(assignments.len());
        for a in assignments {
            let a = a.as_ref();
            let Some((name, expr)) = a.split_once('=') else {
                bail_invalid!(
                    "--expr '{a}' has no '='; write NAME=EXPRESSION, e.g. n_chars=length(text)"
                );
            };
            pairs.push((name.trim().to_string(), expr.trim().to_string()));
        }
        Ok(Self::new(ColumnTransform::Sql(pairs)))
    }
}

/// One task: the new columns of a group of fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddColumnsTask {
    /// The dataset.
    pub location: Location,
    /// The pinned version.
    pub read_version: u64,
    /// Fragments.
    pub fragments: Vec<u32>,
    /// Rows in them.
    pub rows: u64,
    /// The transform (a host transform's output schema resolved).
    pub transform: ColumnTransform,
    /// Rows per batch.
    pub batch_size: u32,
}

/// What a task wrote (uncommitted): each fragment with its new data file,
/// and the new columns as lance typed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewColumnFiles {
    /// The fragments' metadata with the new data file.
    pub fragments: Vec<Fragment>,
    /// The new columns.
    pub columns: ArrowSchema,
    /// Rows written.
    pub rows: u64,
}

/// The column computation as the worker knows it.
pub struct AddColumnsOp;

impl DistributedOp for AddColumnsOp {
    const NAME: &'static str = "add_columns";
    type Task = AddColumnsTask;
    type Output = NewColumnFiles;

    fn label(task: &AddColumnsTask) -> String {
        fragments_label(&task.fragments, task.rows)
    }

    async fn execute(task: AddColumnsTask) -> Result<NewColumnFiles> {
        execute(task).await
    }
}

/// The plan of a run.
#[derive(Debug, Clone)]
pub struct AddColumnsPlan {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub read_version: u64,
    /// The new columns' names.
    pub columns: Vec<String>,
    /// One task per fragment group.
    pub tasks: Vec<AddColumnsTask>,
}

/// What adding columns did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddColumnsReport {
    /// Dataset URI.
    pub uri: String,
    /// The new columns, `name: type`.
    pub columns: Vec<String>,
    /// Rows computed (or merged).
    pub rows: u64,
    /// Fragments that gained the columns' data files.
    pub fragments: usize,
    /// Fragments left without data (their rows read null).
    pub fragments_null: usize,
    /// Tasks run.
    pub tasks: usize,
    /// The version planned against.
    pub read_version: u64,
    /// The version committed.
    pub version: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// New column names: non-empty, not repeated, not in the dataset.
fn check_new_names<'a>(
    dataset: &Dataset,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        ensure_invalid!(
            !name.trim().is_empty(),
            "a new column needs a name (NAME=EXPRESSION)"
        );
        ensure_invalid!(
            !METADATA_COLUMNS.contains(&name),
            "'{name}' is a reserved column name; choose another"
        );
        ensure_invalid!(seen.insert(name), "new column '{name}' is given twice");
        if dataset.schema().field(name).is_some() {
            return Err(Error::AlreadyExists(format!(
                "column '{name}' already exists; choose another name (replacing a column is \
                 not supported by add-columns)"
            )));
        }
        out.push(name.to_string());
    }
    ensure_invalid!(!out.is_empty(), "no new column given");
    Ok(out)
}

/// The output schema of SQL expressions, or the expression that is wrong.
async fn sql_schema(dataset: &Dataset, pairs: &[(String, String)]) -> Result<ArrowSchema> {
    let mut fields = Vec::with_capacity(pairs.len());
    for (name, expr) in pairs {
        ensure_invalid!(
            !expr.trim().is_empty(),
            "the expression of new column '{name}' is empty"
        );
        let mut scan = dataset.scan();
        let bad = |e: lance::Error| {
            Error::InvalidInput(format!(
                "expression '{expr}' (new column '{name}') is not valid SQL over this dataset's \
                 columns: {}",
                without_source_location(&e.to_string())
            ))
        };
        scan.project_with_transform(&[(name.as_str(), expr.as_str())])
            .map_err(bad)?;
        let schema = scan.schema().await.map_err(bad)?;
        let field = schema
            .field_with_name(name)
            .map_err(|e| Error::Internal(format!("projected schema: {e}")))?;
        fields.push(field.clone());
    }
    Ok(ArrowSchema::new(fields))
}

/// Up to [`SAMPLE_ROWS`] live rows of `columns` from the first fragment that
/// has any.
async fn sample(location: &Location, dataset: &Dataset, columns: &[String]) -> Result<RecordBatch> {
    let mut scan = dataset.scan();
    scan.project(columns)
        .map_err(|e| location.lance_error("read a sample", e))?;
    scan.limit(Some(SAMPLE_ROWS as i64), None)
        .map_err(|e| location.lance_error("read a sample", e))?;
    let batches: Vec<RecordBatch> = scan
        .try_into_stream()
        .await
        .map_err(|e| location.lance_error("read a sample", e))?
        .try_collect()
        .await
        .map_err(|e| location.lance_error("read a sample", e))?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::InvalidInput(format!("'{}' has no rows", location.uri())))?;
    arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| Error::Internal(format!("sample batch: {e}")))
}

/// The columns a host transform reads (its own list, or every column).
fn read_columns(dataset: &Dataset, host: &HostTransform) -> Vec<String> {
    host.read_columns.clone().unwrap_or_else(|| {
        dataset
            .schema()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect()
    })
}

/// Validate, resolve the new columns and cut the work into tasks.
pub async fn plan(
    location: &Location,
    request: &AddColumnsRequest,
    parallelism: usize,
) -> Result<AddColumnsPlan> {
    ensure_invalid!(
        (1..=MAX_BATCH_SIZE).contains(&request.batch_size),
        "batch size must be between 1 and {MAX_BATCH_SIZE}, not {}",
        request.batch_size
    );
    if let Some(r) = request.rows_per_task {
        ensure_invalid!(r > 0, "--rows-per-task must be at least 1");
    }
    let dataset = location
        .open(request.version.map(VersionSpec::Number).as_ref())
        .await?;
    let read_version = dataset.version().version;
    let fragments = fragment_rows(location, &dataset).await?;
    let rows: u64 = fragments.iter().map(|f| f.1).sum();
    ensure_invalid!(
        rows > 0,
        "'{}' has no rows to compute columns for (version {read_version}); ingest data first",
        location.uri()
    );
    let (columns, transform) = match &request.transform {
        ColumnTransform::Sql(pairs) => {
            let columns = check_new_names(&dataset, pairs.iter().map(|p| p.0.as_str()))?;
            sql_schema(&dataset, pairs).await?;
            (columns, request.transform.clone())
        }
        ColumnTransform::Host(host) => {
            let reads = read_columns(&dataset, host);
            ensure_invalid!(!reads.is_empty(), "read_columns names no column");
            for column in &reads {
                require_column(&dataset, column)?;
            }
            let function = load_host_transform(&host.payload)?;
            // The transform runs once on a few rows here: one that raises or
            // returns the wrong rows fails before any work.
            let input = sample(location, &dataset, &reads).await?;
            let output = run_checked(&function, &input, host.output_schema.as_ref())?;
            // Fields only: schema metadata (pandas') is not the dataset's.
            let schema = ArrowSchema::new(output.schema().fields().clone());
            let columns =
                check_new_names(&dataset, schema.fields().iter().map(|f| f.name().as_str()))?;
            let mut resolved = host.clone();
            resolved.read_columns = Some(reads);
            resolved.output_schema = Some(schema);
            (columns, ColumnTransform::Host(resolved))
        }
    };
    let groups = match request.rows_per_task {
        Some(r) => rows.div_ceil(r).max(1) as usize,
        None => parallelism.max(1),
    };
    let tasks = contiguous_runs(&fragments, groups)
        .into_iter()
        .map(|(ids, rows)| AddColumnsTask {
            location: location.clone(),
            read_version,
            fragments: ids,
            rows,
            transform: transform.clone(),
            batch_size: request.batch_size,
        })
        .collect();
    Ok(AddColumnsPlan {
        location: location.clone(),
        read_version,
        columns,
        tasks,
    })
}

/// Run a host transform on one batch and check what it returned: one row
/// per input row; with `schema`, its columns (cast where types differ).
fn run_checked(
    function: &BatchFn,
    input: &RecordBatch,
    schema: Option<&ArrowSchema>,
) -> Result<RecordBatch> {
    let output = function(input)?;
    ensure_invalid!(
        output.num_rows() == input.num_rows(),
        "the transform returned {} rows for a batch of {}; it must return exactly one row per \
         input row, in order",
        output.num_rows(),
        input.num_rows()
    );
    ensure_invalid!(
        output.num_columns() > 0,
        "the transform returned no columns; return the new columns only"
    );
    let Some(schema) = schema else {
        return Ok(output);
    };
    let names =
        |s: &ArrowSchema| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
    let got = names(output.schema().as_ref());
    ensure_invalid!(
        got == names(schema),
        "the transform returned columns [{}] but its first batch had [{}]; return the same \
         columns every time",
        got.join(", "),
        names(schema).join(", ")
    );
    if output.schema().as_ref() == schema {
        return Ok(output);
    }
    let arrays = schema
        .fields()
        .iter()
        .zip(output.columns())
        .map(|(field, array)| {
            if array.data_type() == field.data_type() {
                return Ok(array.clone());
            }
            arrow_cast::cast(array, field.data_type()).map_err(|e| {
                Error::InvalidInput(format!(
                    "the transform returned column '{}' as {}, first as {}: {e}",
                    field.name(),
                    array.data_type(),
                    field.data_type()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::new(schema.clone()), arrays).map_err(|e| {
        Error::InvalidInput(format!(
            "the transform's columns do not fit their first schema: {e}"
        ))
    })
}

/// lance's transform for one task.
fn lance_transform(
    transform: &ColumnTransform,
    function: Option<&BatchFn>,
) -> Result<NewColumnTransform> {
    match transform {
        ColumnTransform::Sql(pairs) => Ok(NewColumnTransform::SqlExpressions(pairs.clone())),
        ColumnTransform::Host(host) => {
            let (Some(function), Some(schema)) = (function, host.output_schema.as_ref()) else {
                return Err(Error::Internal(
                    "host transform task without a schema".into(),
                ));
            };
            let (function, checked) = (function.clone(), schema.clone());
            let mapper = move |batch: &RecordBatch| {
                run_checked(&function, batch, Some(&checked))
                    .map_err(|e| lance::Error::invalid_input(e.to_string()))
            };
            Ok(NewColumnTransform::BatchUDF(BatchUDF {
                mapper: Box::new(mapper),
                output_schema: Arc::new(schema.clone()),
                result_checkpoint: None,
            }))
        }
    }
}

fn fragment(
    location: &Location,
    dataset: &Dataset,
    read_version: u64,
    id: u32,
) -> Result<FileFragment> {
    dataset.get_fragment(id as usize).ok_or_else(|| {
        Error::NotFound(format!(
            "fragment {id} is not in version {read_version} of '{}' (fragments: {})",
            location.uri(),
            fragment_ranges(
                &dataset
                    .get_fragments()
                    .iter()
                    .map(|f| f.id() as u32)
                    .collect::<Vec<_>>()
            )
        ))
    })
}

/// The new columns as lance typed them (the fields of `schema` not in the
/// dataset's).
fn new_columns(dataset: &Dataset, schema: &lance::datatypes::Schema) -> ArrowSchema {
    let fields: Vec<Field> = ArrowSchema::from(schema)
        .fields()
        .iter()
        .filter(|f| dataset.schema().field(f.name()).is_none())
        .map(|f| f.as_ref().clone())
        .collect();
    ArrowSchema::new(fields)
}

/// Compute and write the new columns of a group of fragments (worker side).
pub async fn execute(task: AddColumnsTask) -> Result<NewColumnFiles> {
    let location = &task.location;
    let dataset = location
        .open(Some(&VersionSpec::Number(task.read_version)))
        .await?;
    let (function, reads) = match &task.transform {
        ColumnTransform::Host(host) => (
            Some(load_host_transform(&host.payload)?),
            host.read_columns.clone(),
        ),
        ColumnTransform::Sql(_) => (None, None),
    };
    let mut out = NewColumnFiles {
        fragments: Vec::with_capacity(task.fragments.len()),
        columns: ArrowSchema::empty(),
        rows: 0,
    };
    for &id in &task.fragments {
        let fragment = fragment(location, &dataset, task.read_version, id)?;
        let transform = lance_transform(&task.transform, function.as_ref())?;
        let (written, schema) = fragment
            .add_columns(transform, reads.clone(), Some(task.batch_size))
            .await
            .map_err(|e| location.lance_error("add columns", e))?;
        out.columns = new_columns(&dataset, &schema);
        out.rows += fragment
            .count_rows(None)
            .await
            .map_err(|e| location.lance_error("count rows", e))? as u64;
        out.fragments.push(written);
    }
    Ok(out)
}

/// Write new columns given row by row for the fragments their row
/// addresses name (`_rowaddr`, uint64; `_fragid`, `_rowid` and columns the
/// dataset already has are left out; the rest are new). Each fragment's rows must be exactly its live
/// rows, in any order. Writes data files, commits nothing: pass the result to
/// [`commit`] (possibly gathered from many calls).
pub async fn write_row_columns(
    location: &Location,
    read_version: u64,
    batches: &[RecordBatch],
    batch_size: u32,
) -> Result<NewColumnFiles> {
    ensure_invalid!(
        (1..=MAX_BATCH_SIZE).contains(&batch_size),
        "batch size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size}"
    );
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::InvalidInput("no rows given".into()))?;
    let table = arrow_select::concat::concat_batches(&schema, batches)
        .map_err(|e| Error::InvalidInput(format!("the batches do not share a schema: {e}")))?;
    let addresses = table
        .column_by_name(ROW_ADDRESS)
        .ok_or_else(|| {
            Error::InvalidInput(
                "the rows have no _rowaddr column: read the dataset with its row addresses \
                 (read_lance(..., with_metadata=True)) and keep _rowaddr"
                    .into(),
            )
        })?
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::InvalidInput("_rowaddr must be uint64".into()))?
        .clone();
    ensure_invalid!(
        addresses.null_count() == 0,
        "_rowaddr has nulls; every row needs its row address"
    );
    let dataset = location
        .open(Some(&VersionSpec::Number(read_version)))
        .await?;
    // Columns the dataset has are not new: they are left out (as lance-ray
    // does), so rows read with every column plus new ones merge as they are.
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| {
            let name = schema.field(i).name().as_str();
            !METADATA_COLUMNS.contains(&name) && dataset.schema().field(name).is_none()
        })
        .collect();
    ensure_invalid!(
        !keep.is_empty(),
        "no new columns: the rows carry only _rowaddr / _fragid and columns the dataset already \
         has"
    );
    let values = table
        .project(&keep)
        .map_err(|e| Error::Internal(format!("new columns: {e}")))?;
    check_new_names(
        &dataset,
        values.schema().fields().iter().map(|f| f.name().as_str()),
    )?;

    // Rows of each fragment, by offset.
    let mut by_fragment: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    for (row, address) in addresses.values().iter().enumerate() {
        by_fragment
            .entry((address >> 32) as u32)
            .or_default()
            .push(((address & 0xFFFF_FFFF) as u32, row as u32));
    }
    let mut out = NewColumnFiles {
        fragments: Vec::with_capacity(by_fragment.len()),
        columns: ArrowSchema::empty(),
        rows: 0,
    };
    for (id, mut rows) in by_fragment {
        let fragment = fragment(location, &dataset, read_version, id)?;
        rows.sort_unstable();
        check_live_rows(location, &fragment, &rows).await?;
        let order = UInt32Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let taken = arrow_select::take::take_record_batch(&values, &order)
            .map_err(|e| Error::Internal(format!("order rows: {e}")))?;
        let chunks: Vec<std::result::Result<RecordBatch, ArrowError>> = (0..taken.num_rows())
            .step_by(batch_size as usize)
            .map(
                |start| Ok(taken.slice(start, (batch_size as usize).min(taken.num_rows() - start))),
            )
            .collect();
        let reader = RecordBatchIterator::new(chunks, taken.schema());
        let (written, schema) = fragment
            .add_columns(
                NewColumnTransform::Reader(Box::new(reader)),
                None,
                Some(batch_size),
            )
            .await
            .map_err(|e| location.lance_error("add columns", e))?;
        out.columns = new_columns(&dataset, &schema);
        out.rows += rows.len() as u64;
        out.fragments.push(written);
    }
    Ok(out)
}

/// The (offset, input row) pairs, sorted, are exactly the fragment's live
/// rows: none missing, none twice, none deleted or beyond its end.
async fn check_live_rows(
    location: &Location,
    fragment: &FileFragment,
    rows: &[(u32, u32)],
) -> Result<()> {
    let id = fragment.id();
    let physical = fragment
        .physical_rows()
        .await
        .map_err(|e| location.lance_error("count rows", e))?;
    let deleted = fragment
        .get_deletion_vector()
        .await
        .map_err(|e| location.lance_error("read deletions", e))?;
    let is_live = |offset: u32| {
        (offset as usize) < physical && !deleted.as_ref().is_some_and(|d| d.contains(offset))
    };
    for pair in rows.windows(2) {
        ensure_invalid!(
            pair[0].0 != pair[1].0,
            "row address {} (fragment {id}, offset {}) is given twice",
            ((id as u64) << 32) | pair[0].0 as u64,
            pair[0].0
        );
    }
    if let Some(bad) = rows.iter().find(|r| !is_live(r.0)) {
        bail_invalid!(
            "row address {} (fragment {id}, offset {}) is not a live row of that fragment",
            ((id as u64) << 32) | bad.0 as u64,
            bad.0
        );
    }
    let live = physical - deleted.as_ref().map_or(0, |d| d.len());
    ensure_invalid!(
        rows.len() == live,
        "fragment {id} has {live} rows but {} were given; give every row of each fragment \
         (a partial fragment is not supported)",
        rows.len()
    );
    Ok(())
}

/// Commit what tasks (or [`write_row_columns`] calls) wrote: one `Merge`.
/// Every fragment must have its new data unless `allow_missing`, when the
/// others' rows read null (the new columns must then be nullable).
pub async fn commit(
    location: &Location,
    read_version: u64,
    outputs: Vec<NewColumnFiles>,
    allow_missing: bool,
) -> Result<AddColumnsReport> {
    let started = Instant::now();
    let columns = outputs
        .iter()
        .find(|o| !o.fragments.is_empty())
        .map(|o| describe(&o.columns))
        .unwrap_or_default();
    let rows = outputs.iter().map(|o| o.rows).sum();
    let fragments = outputs.iter().map(|o| o.fragments.len()).sum();
    let tasks = outputs.len();
    let (version, fragments_null) =
        commit_merge(location, read_version, outputs, allow_missing).await?;
    Ok(AddColumnsReport {
        uri: location.uri().to_string(),
        columns,
        rows,
        fragments,
        fragments_null,
        tasks,
        read_version,
        version,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn commit_merge(
    location: &Location,
    read_version: u64,
    outputs: Vec<NewColumnFiles>,
    allow_missing: bool,
) -> Result<(u64, usize)> {
    let dataset = location
        .open(Some(&VersionSpec::Number(read_version)))
        .await?;
    let mut columns: Option<ArrowSchema> = None;
    let mut written: BTreeMap<u64, Fragment> = BTreeMap::new();
    for output in outputs {
        if output.fragments.is_empty() {
            continue;
        }
        match &columns {
            None => columns = Some(output.columns.clone()),
            Some(first) => ensure_invalid!(
                first == &output.columns,
                "the new columns differ between fragments ([{}] vs [{}]); every part must \
                 produce the same columns and types",
                describe(first).join(", "),
                describe(&output.columns).join(", ")
            ),
        }
        for f in output.fragments {
            ensure_invalid!(
                written.insert(f.id, f.clone()).is_none(),
                "fragment {} was given twice",
                f.id
            );
        }
    }
    let columns = columns.ok_or_else(|| {
        Error::InvalidInput("nothing was written; no fragment has new columns".into())
    })?;
    let mut missing = Vec::new();
    let mut fragments = Vec::new();
    for f in dataset.get_fragments() {
        match written.remove(&(f.id() as u64)) {
            Some(done) => fragments.push(done),
            None => {
                missing.push(f.id() as u32);
                fragments.push(f.metadata().clone());
            }
        }
    }
    ensure_invalid!(
        written.is_empty(),
        "fragment(s) {} are not in version {read_version}",
        written
            .keys()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !missing.is_empty() {
        ensure_invalid!(
            allow_missing,
            "the new columns do not cover every fragment (missing: {}); give every row, or \
             allow the rest to read null (require_full_coverage=False)",
            fragment_ranges(&missing)
        );
        if let Some(f) = columns.fields().iter().find(|f| !f.is_nullable()) {
            bail_invalid!(
                "column '{}' is not nullable, so fragments without data ({}) cannot read null",
                f.name(),
                fragment_ranges(&missing)
            );
        }
    }
    let mut schema = dataset
        .schema()
        .merge(&columns)
        .map_err(|e| location.lance_error("new schema", e))?;
    schema
        .try_set_field_id(Some(dataset.manifest().max_field_id()))
        .map_err(|e| location.lance_error("new schema", e))?;
    let preserves_nullability = columns.fields().iter().all(|f| f.is_nullable());
    let operation = Operation::Merge {
        fragments,
        schema,
        preserves_nullability,
    };
    let committed = commit::commit(
        location,
        CommitBuilder::new(Arc::new(dataset)),
        read_version,
        operation,
        "commit new columns",
        None,
    )
    .await?;
    Ok((committed.version().version, missing.len()))
}

fn describe(schema: &ArrowSchema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect()
}

/// Plan, compute every fragment's columns on `executor`, commit once.
pub async fn add_columns(
    location: &Location,
    request: &AddColumnsRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<AddColumnsReport> {
    let started = Instant::now();
    let plan = plan(location, request, executor.parallelism()).await?;
    note(
        progress,
        AddColumnsOp::NAME,
        format!(
            "{} task(s) computing {} (planned against version {})",
            plan.tasks.len(),
            plan.columns.join(", "),
            plan.read_version
        ),
    );
    let outputs = run_tasks::<AddColumnsOp>(executor, &plan.tasks, progress).await?;
    let report = commit(location, plan.read_version, outputs, false).await?;
    Ok(AddColumnsReport {
        seconds: started.elapsed().as_secs_f64(),
        ..report
    })
}

/// Write the new columns of rows keyed by `_rowaddr` and commit them: the
/// in-process form of `merge_columns_from` (a distributed caller runs
/// [`write_row_columns`] per group and [`commit`] once).
pub async fn merge_columns(
    location: &Location,
    version: Option<u64>,
    batches: &[RecordBatch],
    allow_missing: bool,
) -> Result<AddColumnsReport> {
    let started = Instant::now();
    let read_version = match version {
        Some(v) => v,
        None => location.open(None).await?.version().version,
    };
    let written = write_row_columns(location, read_version, batches, DEFAULT_BATCH_SIZE).await?;
    let report = commit(location, read_version, vec![written], allow_missing).await?;
    Ok(AddColumnsReport {
        tasks: 0,
        seconds: started.elapsed().as_secs_f64(),
        ..report
    })
}
