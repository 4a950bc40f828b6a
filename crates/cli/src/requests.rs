//! Arguments → the engine's typed requests: the one place a command line
//! becomes a request. Names (index types, metrics, fusion, modes, formats)
//! were already parsed by clap through the engine's `FromStr`.

use lanceflow::compact::CompactRequest;
use lanceflow::embed::{EmbedRequest, TextSource};
use lanceflow::evolve::AddColumnsRequest;
use lanceflow::index::optimize::OptimizeRequest;
use lanceflow::index::scalar::{FtsOptions, ScalarIndexRequest};
use lanceflow::index::vector::{Artifact, VectorIndexRequest};
use lanceflow::ingest::{IngestRequest, Layout};
use lanceflow::search::hybrid::HybridRequest;
use lanceflow::search::text::TextSearchRequest;
use lanceflow::search::{DistanceRange, VectorSearchRequest};
use lanceflow::vectors::Matrix;
use lanceflow::{Location, VersionSpec};

use crate::args::{
    AddColumnsArgs, CompactOptions, EmbedArgs, HybridSearchArgs, IngestArgs, OptimizeArgs,
    ScalarIndexArgs, TextSearchArgs, VectorIndexArgs, VectorLegArgs, VectorSearchArgs, VersionArgs,
};

/// `--version N` / `--tag T`, if either was given.
pub fn version_spec(at: &VersionArgs) -> Option<VersionSpec> {
    match (&at.version, &at.tag) {
        (Some(v), _) => Some(VersionSpec::Number(*v)),
        (None, Some(t)) => Some(VersionSpec::Tag(t.clone())),
        (None, None) => None,
    }
}

/// `lanceflow ingest`.
pub fn ingest(args: &IngestArgs) -> IngestRequest {
    IngestRequest {
        inputs: args.inputs.clone(),
        format: args.format,
        mode: args.mode,
        max_rows_per_file: args.max_rows_per_file,
        columns: args.columns.clone(),
        idempotency_key: args.idempotency_key.clone(),
        layout: Layout {
            storage_version: args.storage_version,
            stable_row_ids: args.stable_row_ids,
        },
    }
}

/// `lanceflow embed`; `output` is `--to`, resolved.
pub fn embed(args: &EmbedArgs, output: Option<Location>) -> EmbedRequest {
    EmbedRequest {
        text: TextSource {
            column: args.column.clone(),
            template: args.template.clone(),
            max_chars: args.max_chars,
        },
        to_column: args.to_column.clone(),
        replace: args.replace,
        embedder: args.model.options(),
        rows_per_task: args.rows_per_task,
        output,
    }
}

/// `lanceflow index vector`.
pub fn vector_index(args: &VectorIndexArgs, rabitq_model: Option<String>) -> VectorIndexRequest {
    let mut request = VectorIndexRequest::new(args.column.clone(), args.index_type, args.metric);
    request.partitions = args.partitions;
    request.sub_vectors = args.sub_vectors;
    if let Some(bits) = args.num_bits {
        request.num_bits = bits;
    }
    request.sample_rate = args.sample_rate;
    request.max_iters = args.max_iters;
    request.name = args.name.clone();
    request.replace = !args.no_replace;
    request.rows_per_segment = args.rows_per_segment;
    request.keep_segments = args.keep_segments;
    request.centroids = args.centroids.clone().map(Artifact::File);
    request.codebook = args.codebook.clone().map(Artifact::File);
    request.save_artifacts = args.save_artifacts.clone();
    request.hnsw_m = args.hnsw_m;
    request.hnsw_ef_construction = args.hnsw_ef_construction;
    request.training = args.training.training();
    request.seed = args.seed;
    request.rabitq_model = rabitq_model;
    request
}

/// `lanceflow index scalar`.
pub fn scalar_index(args: &ScalarIndexArgs) -> ScalarIndexRequest {
    ScalarIndexRequest {
        column: args.column.clone(),
        index_type: args.index_type,
        name: args.name.clone(),
        replace: args.replace && !args.no_replace,
        fragments: args.fragments.clone(),
        rows_per_segment: args.rows_per_segment,
        keep_segments: args.keep_segments,
        fts: FtsOptions {
            with_position: args.with_position,
            base_tokenizer: args.base_tokenizer.clone(),
            language: args.language.clone(),
            lower_case: args.lower_case,
            stem: args.stem,
            remove_stop_words: args.remove_stop_words,
            ascii_folding: args.ascii_folding,
            max_token_length: args.max_token_length,
        },
    }
}

/// `lanceflow add-columns`.
pub fn add_columns(args: &AddColumnsArgs) -> lanceflow::Result<AddColumnsRequest> {
    let mut request = AddColumnsRequest::sql(&args.exprs)?;
    request.version = args.version;
    if let Some(b) = args.batch_size {
        request.batch_size = b;
    }
    request.rows_per_task = args.rows_per_task;
    Ok(request)
}

/// `lanceflow compact`.
pub fn compact(args: &CompactOptions) -> CompactRequest {
    CompactRequest {
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
    }
}

/// `lanceflow optimize`.
pub fn optimize(args: &OptimizeArgs) -> OptimizeRequest {
    OptimizeRequest {
        indexes: args.indexes.clone(),
        merge: args.merge,
        keep_segments: args.keep_segments,
        retrain: args.retrain,
        rows_per_segment: args.rows_per_segment,
    }
}

/// `lanceflow search text`.
pub fn text_search(args: &TextSearchArgs) -> TextSearchRequest {
    TextSearchRequest {
        query: args.query.clone(),
        k: args.scope.k,
        search_columns: args.search_columns.clone(),
        phrase: args.phrase,
        filter: args.scope.filter.clone(),
        columns: args.scope.columns.clone(),
    }
}

/// The vector index settings of a search.
fn vector_leg(queries: Matrix, k: usize, leg: &VectorLegArgs) -> VectorSearchRequest {
    let mut request = VectorSearchRequest::new(queries, k);
    request.column = leg.column.clone();
    request.nprobes = leg.nprobes;
    request.minimum_nprobes = leg.minimum_nprobes;
    request.maximum_nprobes = leg.maximum_nprobes;
    request.refine_factor = leg.refine_factor;
    request
}

/// `lanceflow search vector`, for the query vectors already loaded.
pub fn vector_search(args: &VectorSearchArgs, queries: Matrix) -> VectorSearchRequest {
    let mut request = vector_leg(queries, args.scope.k, &args.vector);
    request.filter = args.scope.filter.clone();
    request.columns = args.scope.columns.clone();
    request.metric = args.metric;
    request.index = args.index.clone();
    request.fast_search = args.fast_search;
    request.distance_range = DistanceRange {
        lower: args.distance_lower,
        upper: args.distance_upper,
    };
    request
}

/// `lanceflow search hybrid`, for the query vector already loaded.
pub fn hybrid_search(args: &HybridSearchArgs, query: Matrix) -> HybridRequest {
    let text = TextSearchRequest {
        query: args.query_text.clone(),
        k: args.text_k,
        search_columns: args.search_columns.clone(),
        phrase: false,
        filter: args.scope.filter.clone(),
        columns: args.scope.columns.clone(),
    };
    HybridRequest {
        text,
        vector: vector_leg(query, args.vector_k, &args.vector),
        k: args.scope.k,
        fusion: args.fusion,
        rrf_k: args.rrf_k,
        weights: args.weights.clone(),
    }
}
