//! Distributed scalar and full-text indexes: BTREE, BITMAP, LABEL_LIST,
//! INVERTED (full-text), NGRAM, ZONEMAP, BLOOMFILTER.
//!
//! Plan → tasks → execute → commit, like the vector indexes:
//! - **plan** (driver): pin a version, check the column's type against the
//!   index type and the options, and cut the fragments into contiguous runs
//!   of about equal rows, one per segment;
//! - **execute** (worker): build one uncommitted segment over its fragments
//!   (`CreateIndexBuilder::fragments(..).execute_uncommitted()`);
//! - **commit** (driver): every segment as one index in one new version
//!   (`commit_existing_index_segments`). A failed task commits nothing.
//!
//! Queries fan out to every segment of an index; full-text scores use
//! corpus-wide BM25 statistics, so a segmented INVERTED index ranks exactly
//! like one built in a single process.

use std::time::Instant;

use arrow_schema::DataType;
use lance::dataset::Dataset;
use lance::index::DatasetIndexExt;
use lance_index::scalar::{BuiltinIndexType, InvertedIndexParams, ScalarIndexParams};
use lance_index::IndexType;
use serde::{Deserialize, Serialize};

use crate::dataset::fragments::{contiguous_runs, fragment_ranges, fragment_rows, fragments_label};
use crate::error::{bail_invalid, ensure_invalid, Error, Result};
use crate::index::segments::{
    check_index_name, encode_segment, BuiltSegment, Committed, SegmentTarget,
};
use crate::progress::{note, Progress};
use crate::spine::DistributedOp;
use crate::spine::Executor;
use crate::storage::{Location, VersionSpec};

/// The scalar index kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScalarIndexType {
    /// Sorted pages: range and equality filters on ordered values.
    Btree,
    /// One bitmap per value: equality filters on low-cardinality columns.
    Bitmap,
    /// Bitmaps over list elements: `array_has_any` / `array_has_all`.
    LabelList,
    /// Full-text (BM25) index on text.
    Inverted,
    /// Trigram index on text: `contains(col, 'sub')`.
    Ngram,
    /// Min/max per zone of rows: cheap range pruning.
    Zonemap,
    /// A bloom filter per zone of rows: equality and `IN` on
    /// high-cardinality columns (ids, hashes), small on disk.
    Bloomfilter,
    /// An R-tree of bounding boxes on a GeoArrow geometry column (points,
    /// lines, polygons; native or WKB): spatial filters such as
    /// `st_intersects(geom, st_geomfromtext('POLYGON ((...))'))`.
    Rtree,
}

impl ScalarIndexType {
    /// Parse `BTREE`, `BITMAP`, `LABEL_LIST`, `INVERTED` (or `FTS`), `NGRAM`,
    /// `ZONEMAP`, `BLOOMFILTER`, `RTREE` in any case.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "BTREE" => Ok(Self::Btree),
            "BITMAP" => Ok(Self::Bitmap),
            "LABEL_LIST" | "LABELLIST" => Ok(Self::LabelList),
            "INVERTED" | "FTS" => Ok(Self::Inverted),
            "NGRAM" => Ok(Self::Ngram),
            "ZONEMAP" | "ZONE_MAP" => Ok(Self::Zonemap),
            "BLOOMFILTER" | "BLOOM_FILTER" => Ok(Self::Bloomfilter),
            "RTREE" | "R_TREE" => Ok(Self::Rtree),
            other => bail_invalid!(
                "unknown scalar index type '{other}'; use BTREE, BITMAP, LABEL_LIST, INVERTED, \
                 NGRAM, ZONEMAP, BLOOMFILTER or RTREE"
            ),
        }
    }

    /// The name `parse` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Btree => "BTREE",
            Self::Bitmap => "BITMAP",
            Self::LabelList => "LABEL_LIST",
            Self::Inverted => "INVERTED",
            Self::Ngram => "NGRAM",
            Self::Zonemap => "ZONEMAP",
            Self::Bloomfilter => "BLOOMFILTER",
            Self::Rtree => "RTREE",
        }
    }

    fn to_lance(self) -> (IndexType, BuiltinIndexType) {
        match self {
            Self::Btree => (IndexType::BTree, BuiltinIndexType::BTree),
            Self::Bitmap => (IndexType::Bitmap, BuiltinIndexType::Bitmap),
            Self::LabelList => (IndexType::LabelList, BuiltinIndexType::LabelList),
            Self::Inverted => (IndexType::Inverted, BuiltinIndexType::Inverted),
            Self::Ngram => (IndexType::NGram, BuiltinIndexType::NGram),
            Self::Zonemap => (IndexType::ZoneMap, BuiltinIndexType::ZoneMap),
            Self::Bloomfilter => (IndexType::BloomFilter, BuiltinIndexType::BloomFilter),
            Self::Rtree => (IndexType::RTree, BuiltinIndexType::RTree),
        }
    }

    /// Whether a column of `data_type` can carry this index; `Err` says
    /// what would.
    pub fn check_column(self, column: &str, data_type: &DataType) -> Result<()> {
        let ok = match self {
            Self::Btree | Self::Bitmap | Self::Zonemap => is_orderable(data_type),
            Self::LabelList => match data_type {
                DataType::List(item) | DataType::LargeList(item) => is_orderable(item.data_type()),
                _ => false,
            },
            Self::Inverted => match data_type {
                DataType::List(item) | DataType::LargeList(item) => is_text(item.data_type()),
                other => is_text(other),
            },
            Self::Ngram => is_text(data_type),
            Self::Bloomfilter => is_hashable(data_type),
            // GeoArrow layouts; lance checks the extension type itself.
            Self::Rtree => matches!(
                data_type,
                DataType::Struct(_)
                    | DataType::List(_)
                    | DataType::LargeList(_)
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
            ),
        };
        if ok {
            return Ok(());
        }
        let wants = match self {
            Self::Btree | Self::Bitmap | Self::Zonemap => {
                "a number, string, boolean, date or timestamp column"
            }
            Self::LabelList => "a list column (e.g. List<Utf8>)",
            Self::Inverted => "a string column (or a list of strings)",
            Self::Ngram => "a string column",
            Self::Bloomfilter => {
                "an integer, float, string, binary, date, time or timestamp column"
            }
            Self::Rtree => {
                "a GeoArrow geometry column (e.g. a geoarrow.point struct or geoarrow.wkb binary)"
            }
        };
        let hint = if is_text(data_type) {
            "; for text use INVERTED (full-text) or NGRAM (substring)"
        } else if matches!(data_type, DataType::List(_) | DataType::LargeList(_)) {
            "; for lists use LABEL_LIST"
        } else if matches!(data_type, DataType::FixedSizeList(_, _)) {
            "; for vectors use `lanceflow index vector`"
        } else {
            ""
        };
        bail_invalid!(
            "column '{column}' is {data_type}, but {} needs {wants}{hint}",
            self.as_str()
        )
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The value types lance's bloom filter hashes.
fn is_hashable(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Timestamp(_, _)
        )
}

fn is_orderable(t: &DataType) -> bool {
    t.is_integer()
        || t.is_floating()
        || is_text(t)
        || matches!(
            t,
            DataType::Boolean
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(_, _)
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Decimal128(_, _)
                | DataType::Binary
                | DataType::LargeBinary
        )
}

/// Tokenizer options of an INVERTED index (unset: lance's defaults: simple
/// tokenizer, English, lower case, stemming, stop words removed, ASCII
/// folding, tokens up to 40 characters, no positions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtsOptions {
    /// Store token positions (needed for phrase queries).
    #[serde(default)]
    pub with_position: bool,
    /// `simple`, `whitespace`, `raw` or `ngram`.
    #[serde(default)]
    pub base_tokenizer: Option<String>,
    /// Language for stemming and stop words (e.g. English, French).
    #[serde(default)]
    pub language: Option<String>,
    /// Lower-case tokens.
    #[serde(default)]
    pub lower_case: Option<bool>,
    /// Stem tokens.
    #[serde(default)]
    pub stem: Option<bool>,
    /// Drop stop words.
    #[serde(default)]
    pub remove_stop_words: Option<bool>,
    /// Fold accents to ASCII.
    #[serde(default)]
    pub ascii_folding: Option<bool>,
    /// Drop tokens longer than this.
    #[serde(default)]
    pub max_token_length: Option<usize>,
}

impl FtsOptions {
    /// Whether any option differs from the defaults.
    fn is_set(&self) -> bool {
        self != &FtsOptions::default()
    }

    /// The lance parameters; `Err` names a bad option.
    pub fn to_lance(&self) -> Result<InvertedIndexParams> {
        let mut p = InvertedIndexParams::default().with_position(self.with_position);
        if let Some(t) = &self.base_tokenizer {
            let t = t.to_ascii_lowercase();
            ensure_invalid!(
                matches!(t.as_str(), "simple" | "whitespace" | "raw" | "ngram"),
                "unknown --base-tokenizer '{t}'; use simple, whitespace, raw or ngram"
            );
            p = p.base_tokenizer(t);
        }
        if let Some(language) = &self.language {
            p = p.language(language).map_err(|_| {
                Error::InvalidInput(format!(
                    "unknown --language '{language}'; use a name such as English, French, \
                     German, Spanish, Italian, Portuguese, Russian"
                ))
            })?;
        }
        if let Some(v) = self.lower_case {
            p = p.lower_case(v);
        }
        if let Some(v) = self.stem {
            p = p.stem(v);
        }
        if let Some(v) = self.remove_stop_words {
            p = p.remove_stop_words(v);
        }
        if let Some(v) = self.ascii_folding {
            p = p.ascii_folding(v);
        }
        if let Some(n) = self.max_token_length {
            ensure_invalid!(n > 0, "--max-token-length must be at least 1");
            p = p.max_token_length(Some(n));
        }
        Ok(p)
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalarIndexRequest {
    /// The column.
    pub column: String,
    /// The index kind.
    pub index_type: ScalarIndexType,
    /// Index name (default `<column>_idx`).
    pub name: Option<String>,
    /// Rebuild an existing index of that name.
    pub replace: bool,
    /// Index only these fragments (default: all).
    pub fragments: Option<Vec<u32>>,
    /// Rows per segment (default: one segment per worker).
    pub rows_per_segment: Option<u64>,
    /// Tokenizer options (INVERTED only).
    pub fts: FtsOptions,
    /// Commit one physical segment per task instead of merging them into one.
    #[serde(default)]
    pub keep_segments: bool,
}

impl ScalarIndexRequest {
    /// An index of `index_type` on `column` with default options.
    pub fn new(column: impl Into<String>, index_type: ScalarIndexType) -> Self {
        Self {
            column: column.into(),
            index_type,
            name: None,
            replace: false,
            fragments: None,
            rows_per_segment: None,
            fts: FtsOptions::default(),
            keep_segments: false,
        }
    }
}

/// One task: build the segment over a group of fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalarSegmentTask {
    /// The dataset.
    pub location: Location,
    /// The pinned version every task reads.
    pub read_version: u64,
    /// Column.
    pub column: String,
    /// Index name.
    pub name: String,
    /// Index kind.
    pub index_type: ScalarIndexType,
    /// Tokenizer options (INVERTED).
    pub fts: FtsOptions,
    /// Fragments this segment covers.
    pub fragments: Vec<u32>,
    /// Rows in them.
    pub rows: u64,
}

/// What one task built (not yet committed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalarSegmentOutput {
    /// Its index metadata as lance's protobuf, base64.
    pub segment: String,
    /// Fragments covered.
    pub fragments: Vec<u32>,
    /// Rows covered.
    pub rows: u64,
}

/// The scalar segment build as the worker knows it.
pub struct ScalarSegmentOp;

impl DistributedOp for ScalarSegmentOp {
    const NAME: &'static str = "scalar_index_segment";
    type Task = ScalarSegmentTask;
    type Output = ScalarSegmentOutput;

    fn label(task: &ScalarSegmentTask) -> String {
        fragments_label(&task.fragments, task.rows)
    }

    async fn execute(task: ScalarSegmentTask) -> Result<ScalarSegmentOutput> {
        execute(task).await
    }
}

/// The plan of a build.
#[derive(Debug, Clone)]
pub struct ScalarIndexPlan {
    /// The dataset.
    pub location: Location,
    /// Pinned version.
    pub read_version: u64,
    /// Index name.
    pub name: String,
    /// Column.
    pub column: String,
    /// One task per segment.
    pub tasks: Vec<ScalarSegmentTask>,
    /// Commit the segments as built (else merged into one).
    pub keep_segments: bool,
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalarIndexReport {
    /// Dataset URI.
    pub uri: String,
    /// Index name.
    pub name: String,
    /// Column.
    pub column: String,
    /// Index kind.
    pub index_type: ScalarIndexType,
    /// Physical segments committed (1 once merged).
    pub segments: usize,
    /// Segments built by tasks.
    pub segments_built: usize,
    /// Fragments indexed.
    pub fragments: usize,
    /// Rows indexed.
    pub rows_indexed: u64,
    /// The version planned against.
    pub read_version: u64,
    /// The version committed.
    pub version: u64,
    /// Seconds building segments.
    pub build_seconds: f64,
    /// Seconds committing.
    pub commit_seconds: f64,
    /// Wall-clock seconds, plan to commit.
    pub seconds: f64,
}

fn lance_params(index_type: ScalarIndexType, fts: &FtsOptions) -> Result<LanceParams> {
    Ok(match index_type {
        ScalarIndexType::Inverted => LanceParams::Inverted(fts.to_lance()?),
        other => LanceParams::Scalar(ScalarIndexParams::for_builtin(other.to_lance().1)),
    })
}

enum LanceParams {
    Inverted(InvertedIndexParams),
    Scalar(ScalarIndexParams),
}

impl LanceParams {
    fn as_dyn(&self) -> &dyn lance_index::IndexParams {
        match self {
            LanceParams::Inverted(p) => p,
            LanceParams::Scalar(p) => p,
        }
    }
}

/// Validate and cut the work into segment tasks.
pub async fn plan(
    location: &Location,
    request: &ScalarIndexRequest,
    parallelism: usize,
) -> Result<ScalarIndexPlan> {
    let dataset = location.open(None).await?;
    let read_version = dataset.version().version;
    let column = request.column.as_str();
    let field = dataset.schema().field(column).ok_or_else(|| {
        let names: Vec<String> = dataset
            .schema()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect();
        Error::NotFound(format!(
            "column '{column}' does not exist in '{}'; columns: {}",
            location.uri(),
            names.join(", ")
        ))
    })?;
    request
        .index_type
        .check_column(column, &field.data_type())?;
    ensure_invalid!(
        request.index_type == ScalarIndexType::Inverted || !request.fts.is_set(),
        "tokenizer options (--with-position, --base-tokenizer, --language, ...) only apply to \
         INVERTED indexes"
    );
    // Bad tokenizer options fail here, before any work.
    lance_params(request.index_type, &request.fts)?;
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| format!("{column}_idx"));
    ensure_invalid!(!name.trim().is_empty(), "--name must not be empty");
    check_index_name(location, &dataset, &name, column, request.replace).await?;

    let mut fragments = fragment_rows(location, &dataset).await?;
    if let Some(wanted) = &request.fragments {
        ensure_invalid!(!wanted.is_empty(), "--fragments names no fragment");
        let known: Vec<u32> = fragments.iter().map(|f| f.0).collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|id| !known.contains(id))
            .map(|id| id.to_string())
            .collect();
        ensure_invalid!(
            missing.is_empty(),
            "fragment(s) {} are not in version {read_version} of '{}' (fragments: {})",
            missing.join(", "),
            location.uri(),
            fragment_ranges(&known)
        );
        fragments.retain(|f| wanted.contains(&f.0));
    }
    let rows: u64 = fragments.iter().map(|f| f.1).sum();
    ensure_invalid!(
        rows > 0,
        "'{}' has no rows to index (version {read_version}); ingest data first",
        location.uri()
    );
    if let Some(r) = request.rows_per_segment {
        ensure_invalid!(r > 0, "--rows-per-segment must be at least 1");
    }
    let segments = match request.rows_per_segment {
        Some(r) => rows.div_ceil(r) as usize,
        None => parallelism.max(1),
    };
    let tasks = contiguous_runs(&fragments, segments)
        .into_iter()
        .map(|(ids, rows)| ScalarSegmentTask {
            location: location.clone(),
            read_version,
            column: column.to_string(),
            name: name.clone(),
            index_type: request.index_type,
            fts: request.fts.clone(),
            fragments: ids,
            rows,
        })
        .collect();
    Ok(ScalarIndexPlan {
        location: location.clone(),
        read_version,
        name,
        column: column.to_string(),
        tasks,
        keep_segments: request.keep_segments,
    })
}

/// Build one uncommitted segment (worker side).
pub async fn execute(task: ScalarSegmentTask) -> Result<ScalarSegmentOutput> {
    let location = &task.location;
    let mut dataset: Dataset = location
        .open(Some(&VersionSpec::Number(task.read_version)))
        .await?;
    let params = lance_params(task.index_type, &task.fts)?;
    let columns = [task.column.as_str()];
    let segment = dataset
        .create_index_builder(&columns, task.index_type.to_lance().0, params.as_dyn())
        .name(task.name.clone())
        .replace(true)
        .fragments(task.fragments.clone())
        .execute_uncommitted()
        .await
        .map_err(|e| location.lance_error("build index segment", e))?;
    Ok(ScalarSegmentOutput {
        segment: encode_segment(&segment),
        fragments: task.fragments,
        rows: task.rows,
    })
}

/// Commit every segment as one index in one new version (merged into one
/// physical segment unless the request keeps them apart).
pub async fn commit(plan: &ScalarIndexPlan, outputs: &[ScalarSegmentOutput]) -> Result<Committed> {
    plan.target().commit(outputs).await
}

impl ScalarIndexPlan {
    fn target(&self) -> SegmentTarget<'_> {
        SegmentTarget {
            location: &self.location,
            read_version: self.read_version,
            name: &self.name,
            column: &self.column,
            keep_segments: self.keep_segments,
        }
    }
}

impl BuiltSegment for ScalarSegmentOutput {
    fn segment(&self) -> &str {
        &self.segment
    }
}

/// Plan, build every segment on `executor`, commit once.
pub async fn create_scalar_index(
    location: &Location,
    request: &ScalarIndexRequest,
    executor: &dyn Executor,
    progress: &dyn Progress,
) -> Result<ScalarIndexReport> {
    let started = Instant::now();
    let plan = plan(location, request, executor.parallelism()).await?;
    let rows: u64 = plan.tasks.iter().map(|t| t.rows).sum();
    note(
        progress,
        ScalarSegmentOp::NAME,
        format!(
            "{} {} segment task(s) over {rows} rows (planned against version {})",
            plan.tasks.len(),
            request.index_type.as_str(),
            plan.read_version
        ),
    );
    let built = plan
        .target()
        .build::<ScalarSegmentOp>(executor, &plan.tasks, progress)
        .await?;
    let (outputs, committed) = (&built.outputs, &built.committed);
    Ok(ScalarIndexReport {
        uri: location.uri().to_string(),
        name: plan.name.clone(),
        column: plan.column.clone(),
        index_type: request.index_type,
        segments: committed.segments,
        segments_built: outputs.len(),
        fragments: outputs.iter().map(|o| o.fragments.len()).sum(),
        rows_indexed: outputs.iter().map(|o| o.rows).sum(),
        read_version: plan.read_version,
        version: committed.version,
        build_seconds: built.build_seconds,
        commit_seconds: built.commit_seconds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

crate::error::from_str_by_parse!(ScalarIndexType);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_schema::Field;

    #[test]
    fn column_types_are_checked_per_index_type() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let fsl = DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), 4);
        use ScalarIndexType::*;
        for t in [Btree, Bitmap, Zonemap] {
            assert!(t.check_column("c", &DataType::Int64).is_ok());
            assert!(t.check_column("c", &DataType::Utf8).is_ok());
            assert!(t
                .check_column("c", &list)
                .unwrap_err()
                .to_string()
                .contains("LABEL_LIST"));
        }
        assert!(LabelList.check_column("c", &list).is_ok());
        assert!(LabelList.check_column("c", &DataType::Utf8).is_err());
        assert!(Inverted.check_column("c", &DataType::LargeUtf8).is_ok());
        assert!(Inverted.check_column("c", &list).is_ok());
        let err = Inverted
            .check_column("n", &DataType::Int32)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 'n' is Int32") && err.contains("string"),
            "{err}"
        );
        assert!(Ngram.check_column("c", &DataType::Utf8).is_ok());
        assert!(Ngram
            .check_column("c", &fsl)
            .unwrap_err()
            .to_string()
            .contains("index vector"));
        assert_eq!(ScalarIndexType::parse("fts").unwrap(), Inverted);
        assert_eq!(ScalarIndexType::parse("label_list").unwrap(), LabelList);
        assert!(ScalarIndexType::parse("hash")
            .unwrap_err()
            .to_string()
            .contains("ZONEMAP"));
        assert_eq!(ScalarIndexType::parse("bloom_filter").unwrap(), Bloomfilter);
        assert_eq!(ScalarIndexType::parse("r_tree").unwrap(), Rtree);
        assert!(Rtree.check_column("g", &DataType::Binary).is_ok());
        assert!(Rtree
            .check_column("g", &DataType::Float64)
            .unwrap_err()
            .to_string()
            .contains("GeoArrow"));
        assert!(Bloomfilter.check_column("c", &DataType::UInt64).is_ok());
        assert!(Bloomfilter.check_column("c", &DataType::LargeUtf8).is_ok());
        assert!(Bloomfilter.check_column("c", &DataType::Boolean).is_err());
        assert!(Bloomfilter
            .check_column("c", &list)
            .unwrap_err()
            .to_string()
            .contains("LABEL_LIST"));
    }

    #[test]
    fn tokenizer_options_are_checked() {
        let ok = FtsOptions {
            with_position: true,
            language: Some("French".into()),
            base_tokenizer: Some("whitespace".into()),
            ..Default::default()
        };
        assert!(ok.to_lance().is_ok());
        let bad = FtsOptions {
            language: Some("Klingon".into()),
            ..Default::default()
        };
        assert!(bad
            .to_lance()
            .unwrap_err()
            .to_string()
            .contains("--language"));
        let bad = FtsOptions {
            base_tokenizer: Some("icu9".into()),
            ..Default::default()
        };
        assert!(bad
            .to_lance()
            .unwrap_err()
            .to_string()
            .contains("--base-tokenizer"));
    }
}
