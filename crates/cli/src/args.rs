//! Command-line arguments (clap derive), one subcommand per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Convert a demo corpus to JSONL.
    #[command(subcommand)]
    Convert(ConvertCommand),
    /// Benchmarks (throughput figures, not tests).
    #[command(subcommand)]
    Bench(BenchCommand),
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
}
