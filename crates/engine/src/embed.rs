//! `embed`: add a sentence-embedding column to a dataset, fragment by
//! fragment, resumably.
//!
//! Plan → tasks → execute → commit, like every distributed operation:
//! - **plan** (driver): pin a version, validate the text column (or template)
//!   and the target column, load the model once (a missing or broken model
//!   fails here, before any work), and group the fragments that still need
//!   vectors into tasks;
//! - **execute** (worker): the worker's one embedder (loaded once per process
//!   and reused for all its tasks) reads only the text columns of each
//!   fragment, embeds them and writes the new column's data file for that
//!   fragment, uncommitted. The text is never rewritten (Lance data
//!   evolution);
//! - **commit** (driver): one new version. A new column is a `Merge` (new
//!   schema, every fragment gains one data file); recomputing an existing
//!   column (`--replace`, or fragments appended after an earlier run) is a
//!   `DataReplacement` of that column's files.
//!
//! **Resumable.** Each finished fragment is checkpointed (its new fragment
//! metadata, as JSON) under `<dataset>/_lanceflow/embed/<run key>/`, where the
//! run key hashes the pinned version, the text source, the target column and
//! the model. Re-running the same command after a crash or Ctrl-C plans only
//! the fragments without a checkpoint and commits exactly what an
//! uninterrupted run would have. The checkpoint directory is removed after
//! the commit.
//!
//! **Null and empty text.** A null value renders as the empty string (in a
//! template, each null field does). Empty text is embedded like any other:
//! it gets the vector sentence-transformers gives `""` (the `[CLS] [SEP]`
//! sequence), so every row has a vector and indexes cover every row. Rows
//! deleted before the run get a null vector (they are never read).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, RecordBatchIterator,
};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use futures::TryStreamExt;
use lance::dataset::fragment::write::FragmentCreateBuilder;
use lance::dataset::fragment::FileFragment;
use lance::dataset::transaction::{DataReplacementGroup, Operation};
use lance::dataset::write::CommitBuilder;
use lance::dataset::NewColumnTransform;
use lance::dataset::WriteParams;
use lance::datatypes::Schema as LanceSchema;
use lance::Dataset;
use lance_table::format::Fragment;
use object_store::path::Path as StorePath;
use serde::{Deserialize, Serialize};

use crate::dataset::commit;
use crate::dataset::fragments::fragments_label;
use crate::embedding::{shared_embedder, Embedder, EmbedderOptions};
use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::progress::{note, Progress};
use crate::spine::Executor;
use crate::spine::{run_tasks, DistributedOp};
use crate::storage::{Location, VersionSpec};

/// Rows per task when fragments are small (fragments are never split).
pub const DEFAULT_ROWS_PER_TASK: u64 = 10_000;
/// Rows read and embedded at a time.
const READ_BATCH: usize = 1024;

/// Where the text to embed comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextSource {
    /// A string column (used when there is no template).
    pub column: Option<String>,
    /// A template such as `{title}: {text}`; `{{` and `}}` are literal braces.
    pub template: Option<String>,
    /// Characters per text, at most (cut before tokenising).
    pub max_chars: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Column(String),
}

fn parse_template(template: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => bail_invalid!(
                            "template '{template}' has a '{{' inside a {{column}} placeholder; \
                             close each placeholder, e.g. \"{{title}}: {{text}}\""
                        ),
                        Some(ch) => name.push(ch),
                        None => bail_invalid!(
                            "template '{template}' has an unclosed '{{'; write {{{{ for a literal brace"
                        ),
                    }
                }
                let name = name.trim().to_string();
                ensure_invalid!(
                    !name.is_empty(),
                    "template '{template}' has an empty {{}}; name a column, e.g. {{title}}"
                );
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Column(name));
            }
            '}' => bail_invalid!(
                "template '{template}' has a stray '}}'; write }}}} for a literal brace"
            ),
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    ensure_invalid!(
        pieces.iter().any(|p| matches!(p, Piece::Column(_))),
        "template '{template}' names no column; use e.g. \"{{title}}: {{text}}\""
    );
    Ok(pieces)
}

impl TextSource {
    /// Embed one string column.
    pub fn column(name: impl Into<String>) -> Self {
        Self {
            column: Some(name.into()),
            template: None,
            max_chars: None,
        }
    }

    fn pieces(&self) -> Result<Vec<Piece>> {
        match (&self.template, &self.column) {
            (Some(_), Some(_)) => {
                bail_invalid!("name the text to embed once: --column NAME or --template, not both")
            }
            (Some(t), None) => parse_template(t),
            (None, Some(c)) => Ok(vec![Piece::Column(c.clone())]),
            (None, None) => bail_invalid!("name the text to embed: --column NAME or --template"),
        }
    }

    /// The columns the text is built from, in order of first use.
    pub fn columns(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for p in self.pieces()? {
            if let Piece::Column(c) = p {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// Check the columns against a dataset schema.
    fn validate(&self, schema: &ArrowSchema) -> Result<()> {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for column in self.columns()? {
            let Ok(field) = schema.field_with_name(&column) else {
                return Err(Error::NotFound(format!(
                    "text column '{column}' does not exist; the dataset has: {}",
                    names.join(", ")
                )));
            };
            let is_text = matches!(
                field.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            if self.template.is_none() {
                ensure_invalid!(
                    is_text,
                    "column '{column}' is {}, not a string column; embed a string column, or use \
                     --template \"{{{column}}}\" to embed its text form",
                    field.data_type()
                );
            } else {
                ensure_invalid!(
                    !matches!(
                        field.data_type(),
                        DataType::FixedSizeList(..) | DataType::List(_) | DataType::Struct(_)
                    ) || is_text,
                    "template column '{column}' is {}, which has no text form",
                    field.data_type()
                );
            }
        }
        Ok(())
    }

    /// The text of every row of `batch`.
    fn render(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        let pieces = self.pieces()?;
        let mut columns: HashMap<&str, ArrayRef> = HashMap::new();
        for p in &pieces {
            if let Piece::Column(name) = p {
                let array = batch.column_by_name(name).ok_or_else(|| {
                    Error::Internal(format!("column '{name}' missing from the read batch"))
                })?;
                let text = arrow_cast::cast(array, &DataType::Utf8).map_err(|e| {
                    Error::InvalidInput(format!("column '{name}' has no text form: {e}"))
                })?;
                columns.insert(name.as_str(), text);
            }
        }
        let mut out = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut text = String::new();
            for p in &pieces {
                match p {
                    Piece::Literal(l) => text.push_str(l),
                    Piece::Column(name) => {
                        if let Some(array) = columns.get(name.as_str()) {
                            if let Some(s) = array
                                .as_any()
                                .downcast_ref::<arrow_array::StringArray>()
                                .filter(|a| a.is_valid(row))
                            {
                                text.push_str(s.value(row));
                            }
                        }
                    }
                }
            }
            if let Some(max) = self.max_chars {
                if let Some((cut, _)) = text.char_indices().nth(max) {
                    text.truncate(cut);
                }
            }
            out.push(text);
        }
        Ok(out)
    }
}

/// What to embed and where to put it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The text.
    pub text: TextSource,
    /// The vector column to add.
    pub to_column: String,
    /// Recompute the column if it exists.
    pub replace: bool,
    /// The model and how to run it.
    pub embedder: EmbedderOptions,
    /// Group small fragments into tasks of about this many rows.
    pub rows_per_task: u64,
    /// Write a new dataset here (every column plus the vectors) instead of
    /// adding the column in place; the source is left as it is.
    #[serde(default)]
    pub output: Option<Location>,
}

impl EmbedRequest {
    /// Embed `column` into `vector` with the default model.
    pub fn new(column: impl Into<String>) -> Self {
        Self {
            text: TextSource::column(column),
            to_column: "vector".into(),
            replace: false,
            embedder: EmbedderOptions::default(),
            rows_per_task: DEFAULT_ROWS_PER_TASK,
            output: None,
        }
    }
}

/// How the column lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedMode {
    /// The column is new: `Merge` with a new schema.
    AddColumn,
    /// The column exists; its data files for the planned fragments are
    /// replaced (`--replace`, or fragments appended after a previous run).
    Rewrite,
    /// A new dataset (`--to URI`): every column of the source plus the
    /// vectors, one `Overwrite` commit there; the source is not touched.
    NewDataset,
}

/// One task: embed a group of fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedTask {
    /// The dataset.
    pub location: Location,
    /// The pinned version.
    pub read_version: u64,
    /// Fragments to embed.
    pub fragments: Vec<u32>,
    /// Live rows in them.
    pub rows: u64,
    /// The text.
    pub text: TextSource,
    /// Target column.
    pub to_column: String,
    /// How the column lands.
    pub mode: EmbedMode,
    /// Model options.
    pub embedder: EmbedderOptions,
    /// Checkpoint directory, relative to the root of the dataset written.
    pub checkpoint: String,
    /// New-dataset mode: where to write, and the schema to write with.
    #[serde(default)]
    pub output: Option<(Location, ArrowSchema)>,
}

/// What a task wrote (uncommitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedTaskOutput {
    /// Per source fragment: its metadata with the new data file
    /// (add-column mode), a fragment holding just the replacement file
    /// (rewrite mode), or the fragments written to the new dataset.
    pub fragments: Vec<(u32, Vec<Fragment>)>,
    /// Rows embedded.
    pub rows: u64,
    /// Tokens embedded (without padding).
    pub tokens: u64,
    /// Fragments taken from a checkpoint instead of embedded.
    pub resumed: usize,
}

/// The embed step as the worker knows it.
pub struct EmbedOp;

impl DistributedOp for EmbedOp {
    const NAME: &'static str = "embed";
    type Task = EmbedTask;
    type Output = EmbedTaskOutput;

    fn label(task: &EmbedTask) -> String {
        fragments_label(&task.fragments, task.rows)
    }

    async fn execute(task: EmbedTask) -> Result<EmbedTaskOutput> {
        execute(task).await
    }
}

/// The plan of an embed run.
#[derive(Debug, Clone)]
pub struct EmbedPlan {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub read_version: u64,
    /// How the column lands.
    pub mode: EmbedMode,
    /// Target column.
    pub to_column: String,
    /// Vector dimension.
    pub dim: usize,
    /// Checkpoint directory (relative to the root of the dataset written).
    pub checkpoint: String,
    /// Fragments already done by an interrupted run.
    pub resumed: BTreeMap<u32, Vec<Fragment>>,
    /// New-dataset mode: where to write, and the schema to write with.
    pub output: Option<(Location, ArrowSchema)>,
    /// Tasks for the rest.
    pub tasks: Vec<EmbedTask>,
    /// Fragments the commit covers.
    pub fragments: Vec<u32>,
}

/// What an embed run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedReport {
    /// Dataset URI.
    pub uri: String,
    /// The new column.
    pub column: String,
    /// Vector dimension.
    pub dim: usize,
    /// `add_column` or `rewrite`.
    pub mode: EmbedMode,
    /// Rows embedded in this run.
    pub rows: u64,
    /// Tokens embedded in this run.
    pub tokens: u64,
    /// Fragments covered by the commit.
    pub fragments: usize,
    /// Fragments reused from an interrupted run's checkpoints.
    pub resumed_fragments: usize,
    /// Tasks run.
    pub tasks: usize,
    /// Where checkpoints were kept (removed after the commit).
    pub checkpoint: String,
    /// The version planned against.
    pub read_version: u64,
    /// The version committed.
    pub version: u64,
    /// Model directory.
    pub model: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Rows per second over the run.
    pub rows_per_second: f64,
}

/// The vector field: `FixedSizeList<float32, dim>`, nullable (deleted rows).
fn vector_field(name: &str, dim: usize) -> Result<Field> {
    let dim = i32::try_from(dim).map_err(|_| Error::Internal("dimension too large".into()))?;
    Ok(Field::new(
        name,
        DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dim),
        true,
    ))
}

/// Whether a fragment still needs vectors in an existing column: it has no
/// data for the column, or (rows appended after an earlier run are written
/// with the whole schema, the vectors as nulls) its vectors are null. A file
/// holding the column alone is one `embed` wrote.
async fn needs_vectors(
    location: &Location,
    fragment: &FileFragment,
    field_id: i32,
    column: &str,
) -> Result<bool> {
    let files = &fragment.metadata().files;
    if !files.iter().any(|f| f.fields.contains(&field_id)) {
        return Ok(true);
    }
    if files.iter().any(|f| *f.fields == [field_id]) {
        return Ok(false);
    }
    let nulls = fragment
        .count_rows(Some(format!("`{column}` IS NULL")))
        .await
        .map_err(|e| location.lance_error("count rows without vectors", e))?;
    Ok(nulls > 0)
}

fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The checkpoint store of one run: one JSON file per finished fragment.
/// A checkpoint is trusted only when it still describes its fragment: the
/// right fragment id and row count, and every data file it names present.
struct Checkpoints {
    store: Arc<lance::io::ObjectStore>,
    dir: StorePath,
    /// The data directory of the dataset the checkpoints' files are in.
    data: StorePath,
}

impl Checkpoints {
    /// The checkpoints under `rel` in the dataset at `location` (which need
    /// not exist yet: a new dataset's are kept where it will be).
    async fn open(location: &Location, rel: &str) -> Result<Self> {
        let (store, dir) = location.store_dir(rel, "open checkpoint store").await?;
        let (_, data) = location.store_dir("data", "open checkpoint store").await?;
        Ok(Self { store, dir, data })
    }

    async fn exists(&self, location: &Location, path: &StorePath) -> Result<bool> {
        self.store
            .exists(path)
            .await
            .map_err(|e| location.lance_error("read checkpoint", e))
    }

    fn path(&self, fragment: u32) -> StorePath {
        self.dir.clone().join(format!("{fragment}.json"))
    }

    /// The finished work for `source`, if its checkpoint is readable and
    /// still matches the fragment (else the fragment is redone).
    async fn load(
        &self,
        location: &Location,
        source: &FileFragment,
        mode: EmbedMode,
    ) -> Result<Option<Vec<Fragment>>> {
        let fragment = source.id() as u32;
        let path = self.path(fragment);
        if !self.exists(location, &path).await? {
            return Ok(None);
        }
        let bytes = self
            .store
            .read_one_all(&path)
            .await
            .map_err(|e| location.lance_error("read checkpoint", e))?;
        let done = match serde_json::from_slice::<Vec<Fragment>>(&bytes) {
            Ok(done) => done,
            Err(e) => {
                // A torn write: redo the fragment.
                tracing::warn!(fragment, error = %e, "ignoring unreadable checkpoint");
                return Ok(None);
            }
        };
        match self.mismatch(location, source, mode, &done).await? {
            None => Ok(Some(done)),
            Some(reason) => {
                tracing::warn!(
                    fragment,
                    reason,
                    "ignoring a checkpoint that no longer matches"
                );
                Ok(None)
            }
        }
    }

    /// Why `done` cannot stand for `source`'s work, if it cannot.
    async fn mismatch(
        &self,
        location: &Location,
        source: &FileFragment,
        mode: EmbedMode,
        done: &[Fragment],
    ) -> Result<Option<String>> {
        let id = source.id() as u64;
        if mode == EmbedMode::NewDataset {
            // The live rows, copied into fragments of the new dataset.
            let live = source
                .count_rows(None)
                .await
                .map_err(|e| location.lance_error("count rows", e))?;
            let copied: usize = done.iter().filter_map(|f| f.physical_rows).sum();
            if copied != live {
                return Ok(Some(format!("it holds {copied} rows, the fragment {live}")));
            }
        } else {
            let physical = source
                .physical_rows()
                .await
                .map_err(|e| location.lance_error("count rows", e))?;
            let [one] = done else {
                return Ok(Some(format!("it names {} fragments, not one", done.len())));
            };
            if one.id != id {
                return Ok(Some(format!("it is for fragment {}", one.id)));
            }
            if one.physical_rows != Some(physical) {
                return Ok(Some(format!(
                    "it holds {:?} rows, the fragment {physical}",
                    one.physical_rows
                )));
            }
        }
        for file in done.iter().flat_map(|f| &f.files) {
            let mut path = self.data.clone();
            for part in file.path.split('/') {
                path = path.join(part);
            }
            if !self.exists(location, &path).await? {
                return Ok(Some(format!("its data file {} is gone", file.path)));
            }
        }
        Ok(None)
    }

    async fn save(&self, location: &Location, fragment: u32, value: &[Fragment]) -> Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.store
            .put(&self.path(fragment), &bytes)
            .await
            .map_err(|e| location.lance_error("write checkpoint", e))?;
        Ok(())
    }

    async fn remove(&self, location: &Location) -> Result<()> {
        self.store
            .remove_dir_all(self.dir.clone())
            .await
            .map_err(|e| location.lance_error("remove checkpoints", e))
    }
}

/// How the vectors land and which fragments need them: all of them for a
/// new column, a new dataset or `--replace`; else those without vectors
/// (an error when none is left).
async fn what_to_embed<'a>(
    location: &Location,
    dataset: &Dataset,
    fragments: &'a [FileFragment],
    to_column: &str,
    dim: usize,
    replace: bool,
    new_dataset: bool,
) -> Result<(EmbedMode, Vec<&'a FileFragment>)> {
    let field = match dataset.schema().field(to_column) {
        _ if new_dataset => return Ok((EmbedMode::NewDataset, fragments.iter().collect())),
        None => return Ok((EmbedMode::AddColumn, fragments.iter().collect())),
        Some(field) => field,
    };
    let expected = vector_field(to_column, dim)?;
    let actual = Field::from(field);
    ensure_invalid!(
        actual.data_type() == expected.data_type(),
        "column '{to_column}' exists and is {}, not {}-d float32 vectors; choose another \
         --to-column",
        actual.data_type(),
        dim
    );
    if replace {
        return Ok((EmbedMode::Rewrite, fragments.iter().collect()));
    }
    let mut missing: Vec<&FileFragment> = Vec::new();
    for f in fragments {
        if needs_vectors(location, f, field.id, to_column).await? {
            missing.push(f);
        }
    }
    if missing.is_empty() {
        return Err(Error::AlreadyExists(format!(
            "column '{to_column}' already holds embeddings for every fragment of '{}'; \
             pass --replace to recompute it, or --to-column NAME for another column",
            location.uri()
        )));
    }
    Ok((EmbedMode::Rewrite, missing))
}

/// Consecutive fragments `(id, rows)` grouped up to `target` rows each (a
/// fragment larger than `target` is a group of its own).
fn consecutive_groups(fragments: &[(u32, u64)], target: u64) -> Vec<(Vec<u32>, u64)> {
    let mut groups: Vec<(Vec<u32>, u64)> = Vec::new();
    for &(id, rows) in fragments {
        match groups.last_mut() {
            Some((ids, sum)) if *sum + rows <= target => {
                ids.push(id);
                *sum += rows;
            }
            _ => groups.push((vec![id], rows)),
        }
    }
    groups
}

/// Validate, load the model and cut the work into tasks.
pub async fn plan(
    location: &Location,
    request: &EmbedRequest,
    workers: usize,
) -> Result<EmbedPlan> {
    let dataset = location.open(None).await?;
    let read_version = dataset.version().version;
    let arrow_schema = ArrowSchema::from(dataset.schema());
    request.text.validate(&arrow_schema)?;
    let to_column = request.to_column.trim().to_string();
    ensure_invalid!(!to_column.is_empty(), "--to-column must name a column");
    ensure_invalid!(
        !request.text.columns()?.contains(&to_column),
        "--to-column '{to_column}' is also a text column; pick another name"
    );

    // The model: fails here, before any work, when missing or broken.
    let options = request.embedder.clone();
    let embedder = tokio::task::spawn_blocking(move || shared_embedder(&options))
        .await
        .map_err(|e| Error::Internal(format!("model loading panicked: {e}")))??;
    let dim = embedder.dim();

    let fragments = dataset.get_fragments();
    // `--to`: a new dataset with every column plus the vectors.
    let output = match &request.output {
        Some(target) => Some((
            target.clone(),
            new_dataset_schema(target, &dataset, &to_column, dim, request.replace).await?,
        )),
        None => None,
    };
    let (mode, todo) = what_to_embed(
        location,
        &dataset,
        &fragments,
        &to_column,
        dim,
        request.replace,
        output.is_some(),
    )
    .await?;

    let key = serde_json::json!({
        "version": read_version,
        "text": request.text,
        "to": to_column,
        "mode": mode,
        "model": embedder.fingerprint(),
        "fragments": todo.iter().map(|f| f.id()).collect::<Vec<_>>(),
        "output": output.as_ref().map(|(target, _)| target.uri()),
    });
    let checkpoint = format!("_lanceflow/embed/{}", fnv(&key.to_string()));
    let written = output.as_ref().map_or(location, |(target, _)| target);
    let checkpoints = Checkpoints::open(written, &checkpoint).await?;

    let mut resumed = BTreeMap::new();
    let mut pending: Vec<(u32, u64)> = Vec::new();
    for fragment in &todo {
        let id = fragment.id() as u32;
        if let Some(done) = checkpoints.load(written, fragment, mode).await? {
            resumed.insert(id, done);
            continue;
        }
        let rows = fragment
            .count_rows(None)
            .await
            .map_err(|e| location.lance_error("count rows", e))? as u64;
        pending.push((id, rows));
    }
    let live: u64 = pending.iter().map(|p| p.1).sum();
    ensure_invalid!(
        !todo.is_empty(),
        "'{}' has no rows to embed; ingest some first",
        location.uri()
    );

    // Consecutive fragments up to rows_per_task, but at least one task per
    // worker when there is enough work.
    let target = request
        .rows_per_task
        .max(1)
        .min(live.div_ceil(workers.max(1) as u64).max(1));
    let tasks = consecutive_groups(&pending, target)
        .into_iter()
        .map(|(fragments, rows)| EmbedTask {
            location: location.clone(),
            read_version,
            fragments,
            rows,
            text: request.text.clone(),
            to_column: to_column.clone(),
            mode,
            embedder: request.embedder.clone(),
            checkpoint: checkpoint.clone(),
            output: output.clone(),
        })
        .collect();

    Ok(EmbedPlan {
        location: location.clone(),
        read_version,
        mode,
        to_column,
        dim,
        checkpoint,
        resumed,
        output,
        tasks,
        fragments: todo.iter().map(|f| f.id() as u32).collect(),
    })
}

/// The schema of the dataset `--to` writes: the source's columns (less an
/// old vector column being recomputed) plus the vectors. The target must
/// not exist yet.
async fn new_dataset_schema(
    target: &Location,
    source: &Dataset,
    to_column: &str,
    dim: usize,
    replace: bool,
) -> Result<ArrowSchema> {
    if target.open_if_exists().await?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "'{}' already exists; --to writes a new dataset: choose another URI",
            target.uri()
        )));
    }
    let source_schema = ArrowSchema::from(source.schema());
    if source_schema.field_with_name(to_column).is_ok() && !replace {
        return Err(Error::AlreadyExists(format!(
            "column '{to_column}' exists in the source; pass --replace to recompute it in the new \
             dataset, or --to-column NAME for another column"
        )));
    }
    let mut fields: Vec<Field> = source_schema
        .fields()
        .iter()
        .filter(|f| f.name() != to_column)
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(vector_field(to_column, dim)?);
    Ok(ArrowSchema::new(fields))
}

/// Run blocking compute without stalling the async runtime.
fn compute<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Embed every live row of one fragment, in physical order.
/// Returns (row offsets, vectors, tokens).
async fn embed_fragment(
    location: &Location,
    fragment: &FileFragment,
    text: &TextSource,
    embedder: &Embedder,
) -> Result<(Vec<u32>, Vec<f32>, u64)> {
    let columns = text.columns()?;
    let mut scanner = fragment.scan();
    scanner
        .project(&columns)
        .map_err(|e| location.lance_error("read text", e))?;
    scanner.with_row_address();
    scanner.scan_in_order(true);
    scanner.batch_size(READ_BATCH);
    let mut stream = scanner
        .try_into_stream()
        .await
        .map_err(|e| location.lance_error("read text", e))?;
    let mut offsets = Vec::new();
    let mut data = Vec::new();
    let mut tokens = 0u64;
    while let Some(batch) = stream
        .try_next()
        .await
        .map_err(|e| location.lance_error("read text", e))?
    {
        let addrs = batch
            .column_by_name("_rowaddr")
            .and_then(|a| a.as_any().downcast_ref::<arrow_array::UInt64Array>())
            .ok_or_else(|| Error::Internal("scan returned no row addresses".into()))?;
        offsets.extend(addrs.values().iter().map(|a| (*a & 0xFFFF_FFFF) as u32));
        let texts = text.render(&batch)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (m, t) = compute(|| embedder.embed_with_stats(&refs))?;
        tokens += t as u64;
        data.extend_from_slice(&m.data);
    }
    Ok((offsets, data, tokens))
}

/// A fragment's new vectors: `data[i·dim..]` belongs to the row at
/// physical offset `offsets[i]`.
struct VectorsAt<'a> {
    offsets: &'a [u32],
    data: &'a [f32],
    dim: usize,
}

/// `dim`-wide float32 vectors as a fixed-size list (nullable where
/// `valid` says so).
fn vector_list(values: Vec<f32>, dim: usize, valid: Option<Vec<bool>>) -> Result<ArrayRef> {
    let list = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        dim as i32,
        Arc::new(Float32Array::from(values)),
        valid.map(Into::into),
    )
    .map_err(|e| Error::Internal(format!("vectors to arrow: {e}")))?;
    Ok(Arc::new(list))
}

/// A new vector column for one fragment: one vector per live row, in order
/// (lance's updater puts deleted rows back).
async fn add_vector_column(
    location: &Location,
    fragment: &FileFragment,
    data: Vec<f32>,
    dim: usize,
    out_schema: &SchemaRef,
) -> Result<Fragment> {
    let batches = chunk_batches(out_schema, vector_list(data, dim, None)?)?;
    let reader = RecordBatchIterator::new(
        batches.into_iter().map(Ok::<_, arrow_schema::ArrowError>),
        out_schema.clone(),
    );
    let (new_fragment, _) = fragment
        .add_columns(
            NewColumnTransform::Reader(Box::new(reader)),
            None,
            Some(READ_BATCH as u32),
        )
        .await
        .map_err(|e| location.lance_error("write vectors", e))?;
    Ok(new_fragment)
}

/// The existing vector column's data files rewritten for one fragment:
/// every physical row, deleted ones as nulls.
async fn rewrite_vector_column(
    location: &Location,
    fragment: &FileFragment,
    vectors: VectorsAt<'_>,
    schema: &LanceSchema,
    out_schema: &SchemaRef,
) -> Result<Fragment> {
    let (id, dim) = (fragment.id(), vectors.dim);
    let physical = fragment
        .physical_rows()
        .await
        .map_err(|e| location.lance_error("count rows", e))?;
    let mut values = vec![0f32; physical * dim];
    let mut valid = vec![false; physical];
    for (i, &off) in vectors.offsets.iter().enumerate() {
        let off = off as usize;
        ensure_invalid!(
            off < physical,
            "fragment {id}: row offset {off} beyond its {physical} rows"
        );
        values[off * dim..(off + 1) * dim].copy_from_slice(&vectors.data[i * dim..(i + 1) * dim]);
        valid[off] = true;
    }
    let batches = chunk_batches(out_schema, vector_list(values, dim, Some(valid))?)?;
    let group = fragment
        .write_columns(
            futures::stream::iter(batches.into_iter().map(Ok::<_, lance::Error>)),
            schema,
        )
        .await
        .map_err(|e| location.lance_error("write vectors", e))?;
    let mut holder = Fragment::new(group.0);
    holder.files = vec![group.1];
    holder.physical_rows = Some(physical);
    Ok(holder)
}

/// Embed a group of fragments (worker side). Writes data files and
/// checkpoints; commits nothing.
pub async fn execute(task: EmbedTask) -> Result<EmbedTaskOutput> {
    let location = &task.location;
    let dataset = Arc::new(
        location
            .open(Some(&VersionSpec::Number(task.read_version)))
            .await?,
    );
    let options = task.embedder.clone();
    let embedder = compute(|| shared_embedder(&options))?;
    let dim = embedder.dim();
    let written = task.output.as_ref().map_or(location, |(target, _)| target);
    let checkpoints = Checkpoints::open(written, &task.checkpoint).await?;
    let field = vector_field(&task.to_column, dim)?;
    let out_schema: SchemaRef = Arc::new(ArrowSchema::new(vec![field.clone()]));

    let mut output = EmbedTaskOutput {
        fragments: Vec::with_capacity(task.fragments.len()),
        rows: 0,
        tokens: 0,
        resumed: 0,
    };
    for &id in &task.fragments {
        let fragment = dataset.get_fragment(id as usize).ok_or_else(|| {
            Error::NotFound(format!(
                "fragment {id} is not in version {} of '{}'",
                task.read_version,
                location.uri()
            ))
        })?;
        // A retried task keeps what its earlier attempt finished.
        if let Some(done) = checkpoints.load(written, &fragment, task.mode).await? {
            output.fragments.push((id, done));
            output.resumed += 1;
            continue;
        }
        if let (EmbedMode::NewDataset, Some((target, schema))) = (task.mode, &task.output) {
            let (fragments, rows, tokens) =
                copy_with_vectors(location, &fragment, &task.text, &embedder, target, schema)
                    .await?;
            checkpoints.save(written, id, &fragments).await?;
            output.fragments.push((id, fragments));
            output.rows += rows;
            output.tokens += tokens;
            continue;
        }
        let (offsets, data, tokens) =
            embed_fragment(location, &fragment, &task.text, &embedder).await?;
        let done = match task.mode {
            EmbedMode::AddColumn => {
                add_vector_column(location, &fragment, data, dim, &out_schema).await?
            }
            EmbedMode::Rewrite => {
                let schema = dataset
                    .schema()
                    .project(&[task.to_column.as_str()])
                    .map_err(|e| location.lance_error("vector column schema", e))?;
                let vectors = VectorsAt {
                    offsets: &offsets,
                    data: &data,
                    dim,
                };
                rewrite_vector_column(location, &fragment, vectors, &schema, &out_schema).await?
            }
            EmbedMode::NewDataset => {
                return Err(Error::Internal(
                    "a new-dataset embed task without an output".into(),
                ))
            }
        };
        checkpoints
            .save(written, id, std::slice::from_ref(&done))
            .await?;
        output.fragments.push((id, vec![done]));
        output.rows += offsets.len() as u64;
        output.tokens += tokens;
    }
    Ok(output)
}

/// New-dataset mode: read every column of a fragment's live rows, embed
/// the text, and write the rows with their vectors as uncommitted fragments
/// of the target dataset. Returns (fragments, rows, tokens).
async fn copy_with_vectors(
    location: &Location,
    fragment: &FileFragment,
    text: &TextSource,
    embedder: &Embedder,
    target: &Location,
    schema: &ArrowSchema,
) -> Result<(Vec<Fragment>, u64, u64)> {
    let schema: SchemaRef = Arc::new(schema.clone());
    let (vector, kept) = schema
        .fields()
        .split_last()
        .ok_or_else(|| Error::Internal("empty output schema".into()))?;
    let columns: Vec<&str> = kept.iter().map(|f| f.name().as_str()).collect();
    let mut scanner = fragment.scan();
    scanner
        .project(&columns)
        .map_err(|e| location.lance_error("read rows", e))?;
    scanner.scan_in_order(true);
    scanner.batch_size(READ_BATCH);
    let mut stream = scanner
        .try_into_stream()
        .await
        .map_err(|e| location.lance_error("read rows", e))?;
    let dim = embedder.dim();
    let mut batches = Vec::new();
    let (mut rows, mut tokens) = (0u64, 0u64);
    while let Some(batch) = stream
        .try_next()
        .await
        .map_err(|e| location.lance_error("read rows", e))?
    {
        let texts = text.render(&batch)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (m, t) = compute(|| embedder.embed_with_stats(&refs))?;
        tokens += t as u64;
        rows += batch.num_rows() as u64;
        let list = FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, true)),
            dim as i32,
            Arc::new(Float32Array::from(m.data)),
            None,
        )
        .map_err(|e| Error::Internal(format!("vectors to arrow: {e}")))?;
        let mut arrays = kept
            .iter()
            .map(|f| {
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    Error::Internal(format!("scan returned no column '{}'", f.name()))
                })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        arrays.push(Arc::new(list));
        batches.push(
            RecordBatch::try_new(schema.clone(), arrays)
                .map_err(|e| Error::Internal(format!("rows with '{}': {e}", vector.name())))?,
        );
    }
    if rows == 0 {
        return Ok((Vec::new(), 0, 0)); // every row deleted
    }
    let lance_schema = LanceSchema::try_from(schema.as_ref())
        .map_err(|e| Error::InvalidInput(format!("schema cannot be stored in Lance: {e}")))?;
    target.pin_memory_store().await?;
    let params = WriteParams {
        store_params: Some(target.store_params()),
        session: Some(target.session()),
        ..Default::default()
    };
    let reader = RecordBatchIterator::new(
        batches.into_iter().map(Ok::<_, arrow_schema::ArrowError>),
        schema.clone(),
    );
    let mut fragments = FragmentCreateBuilder::new(target.uri())
        .schema(&lance_schema)
        .write_params(&params)
        .write_fragments(reader)
        .await
        .map_err(|e| target.lance_error("write rows with vectors", e))?;
    for f in &mut fragments {
        f.id = 0; // assigned at commit
    }
    Ok((fragments, rows, tokens))
}

/// New-dataset mode: one `Overwrite` commit creates the target.
async fn commit_new_dataset(plan: &EmbedPlan, done: BTreeMap<u32, Vec<Fragment>>) -> Result<u64> {
    let (target, schema) = plan
        .output
        .as_ref()
        .ok_or_else(|| Error::Internal("new-dataset plan without an output".into()))?;
    // Source fragment order, so rows keep their order.
    let fragments: Vec<Fragment> = done.into_values().flatten().collect();
    ensure_invalid!(
        !fragments.is_empty(),
        "'{}' has no live rows; nothing was written",
        plan.location.uri()
    );
    let operation = Operation::Overwrite {
        fragments,
        schema: LanceSchema::try_from(schema)
            .map_err(|e| Error::InvalidInput(format!("schema cannot be stored in Lance: {e}")))?,
        config_upsert_values: None,
        initial_bases: None,
    };
    target.pin_memory_store().await?;
    let builder = CommitBuilder::new(target.uri())
        .with_store_params(target.store_params())
        .with_session(target.session());
    let dataset = commit::commit(
        target,
        builder,
        0,
        operation,
        "commit the new dataset",
        None,
    )
    .await?;
    Ok(dataset.version().version)
}

/// The one fragment a column-mode result holds.
fn single(id: u32, mut fragments: Vec<Fragment>) -> Result<Fragment> {
    match (fragments.pop(), fragments.is_empty()) {
        (Some(f), true) => Ok(f),
        _ => Err(Error::Internal(format!(
            "fragment {id}: expected one result fragment"
        ))),
    }
}

fn chunk_batches(schema: &SchemaRef, column: ArrayRef) -> Result<Vec<RecordBatch>> {
    let total = column.len();
    let mut out = Vec::new();
    let mut start = 0;
    while start < total {
        let len = (total - start).min(8192);
        out.push(
            RecordBatch::try_new(schema.clone(), vec![column.slice(start, len)])
                .map_err(|e| Error::Internal(format!("vector batch: {e}")))?,
        );
        start += len;
    }
    Ok(out)
}

/// Commit every fragment's new data as one version.
pub async fn commit(plan: &EmbedPlan, outputs: Vec<EmbedTaskOutput>) -> Result<u64> {
    let location = &plan.location;
    let mut done: BTreeMap<u32, Vec<Fragment>> = plan.resumed.clone();
    for output in outputs {
        done.extend(output.fragments);
    }
    for id in &plan.fragments {
        ensure_invalid!(
            done.contains_key(id),
            "fragment {id} has no embeddings; nothing was committed (re-run the command)"
        );
    }
    if plan.mode == EmbedMode::NewDataset {
        return commit_new_dataset(plan, done).await;
    }
    let dataset = location
        .open(Some(&VersionSpec::Number(plan.read_version)))
        .await?;
    let operation = match plan.mode {
        EmbedMode::AddColumn => {
            let field = vector_field(&plan.to_column, plan.dim)?;
            let mut schema = dataset
                .schema()
                .merge(&ArrowSchema::new(vec![field]))
                .map_err(|e| location.lance_error("new schema", e))?;
            schema
                .try_set_field_id(Some(dataset.manifest().max_field_id()))
                .map_err(|e| location.lance_error("new schema", e))?;
            let fragments = dataset
                .get_fragments()
                .iter()
                .map(|f| {
                    let id = f.id() as u32;
                    let result = done.remove(&id).ok_or_else(|| {
                        Error::Internal(format!("fragment {id} was not embedded"))
                    })?;
                    single(id, result)
                })
                .collect::<Result<Vec<_>>>()?;
            Operation::Merge {
                fragments,
                schema,
                preserves_nullability: true,
            }
        }
        EmbedMode::Rewrite => {
            let replacements = done
                .into_iter()
                .map(|(id, result)| {
                    let f = single(id, result)?;
                    let file = f.files.into_iter().next().ok_or_else(|| {
                        Error::Internal(format!("fragment {} has no replacement file", f.id))
                    })?;
                    Ok(DataReplacementGroup(f.id, file))
                })
                .collect::<Result<Vec<_>>>()?;
            Operation::DataReplacement { replacements }
        }
        EmbedMode::NewDataset => {
            return Err(Error::Internal("new-dataset commit in column mode".into()))
        }
    };
    let committed = commit::commit(
        location,
        CommitBuilder::new(Arc::new(dataset)),
        plan.read_version,
        operation,
        "commit embeddings",
        None,
    )
    .await?;
    Ok(committed.version().version)
}

/// Plan, embed every fragment on `executor`, commit once.
pub async fn embed(
    location: &Location,
    request: &EmbedRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<EmbedReport> {
    let started = Instant::now();
    let plan = plan(location, request, executor.parallelism()).await?;
    let resumed_fragments = plan.resumed.len();
    note(
        progress,
        EmbedOp::NAME,
        format!(
            "{} task(s) over {} fragment(s){} (planned against version {}; checkpoints in {}/{})",
            plan.tasks.len(),
            plan.fragments.len(),
            if resumed_fragments > 0 {
                format!(", {resumed_fragments} already done by an interrupted run")
            } else {
                String::new()
            },
            plan.read_version,
            location.uri(),
            plan.checkpoint
        ),
    );
    let outputs = run_tasks::<EmbedOp>(executor, &plan.tasks, progress).await?;
    let rows: u64 = outputs.iter().map(|o| o.rows).sum();
    let tokens: u64 = outputs.iter().map(|o| o.tokens).sum();
    let version = commit(&plan, outputs).await?;
    let written = plan.output.as_ref().map_or(location, |(target, _)| target);
    let checkpoints = Checkpoints::open(written, &plan.checkpoint).await?;
    if let Err(e) = checkpoints.remove(written).await {
        tracing::warn!(error = %e, "could not remove embed checkpoints");
    }
    let model = shared_embedder(&request.embedder)?
        .model_dir()
        .display()
        .to_string();
    let seconds = started.elapsed().as_secs_f64();
    Ok(EmbedReport {
        uri: written.uri().to_string(),
        column: plan.to_column.clone(),
        dim: plan.dim,
        mode: plan.mode,
        rows,
        tokens,
        fragments: plan.fragments.len(),
        resumed_fragments,
        tasks: plan.tasks.len(),
        checkpoint: plan.checkpoint.clone(),
        read_version: plan.read_version,
        version,
        model,
        seconds,
        rows_per_second: if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render() {
        let src = TextSource {
            column: None,
            template: Some("{title}: {{x}} {text}".into()),
            max_chars: Some(12),
        };
        assert_eq!(src.columns().unwrap(), vec!["title", "text"]);
        let schema = Arc::new(ArrowSchema::new(vec![
            Field::new("title", DataType::Utf8, true),
            Field::new("text", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::StringArray::from(vec![Some("A"), None])),
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("long body text"),
                    None,
                ])),
            ],
        )
        .unwrap();
        assert_eq!(src.render(&batch).unwrap(), vec!["A: {x} long ", ": {x} "]);
        for bad in ["{", "{}", "}", "no columns", "{a", "{title: {text}"] {
            let s = TextSource {
                column: None,
                template: Some(bad.into()),
                max_chars: None,
            };
            assert!(s.columns().is_err(), "{bad}");
        }
    }
}
