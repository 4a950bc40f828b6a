//! Distributed IVF / PQ training against the lance crate's single-node
//! training on the same data: recall, k-means objective, reproducibility.

use std::path::Path;

use lanceflow::index::vector::kmeans::{KMeansDistance, Partial};
use lanceflow::index::vector::{
    create_vector_index, Metric, Training, VectorIndexRequest, VectorIndexType,
};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::search::{search_vectors, VectorSearchRequest};
use lanceflow::vectors::{
    brute_force_knn, clustered_vectors, read_npy, recall_at_k, write_generated_parquet,
    ClusteredSpec, Matrix,
};
use lanceflow::Location;

use crate::common::*;

const DIM: usize = 64;

async fn dataset(dir: &Path, name: &str, rows: usize, seed: u64) -> (Location, Matrix, Matrix) {
    let (all, labels) = clustered_vectors(&ClusteredSpec::new(rows + 400, DIM, 60, seed)).unwrap();
    let data = Matrix::new(DIM, all.data[..rows * DIM].to_vec()).unwrap();
    let queries = Matrix::new(DIM, all.data[rows * DIM..].to_vec()).unwrap();
    let parquet = dir.join(format!("{name}.parquet"));
    write_generated_parquet(&parquet, &data, &labels[..rows]).unwrap();
    let loc = local(dir, name);
    let mut req = IngestRequest::new(vec![parquet], WriteMode::Create);
    req.max_rows_per_file = rows / 6;
    ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    (loc, data, queries)
}

/// Build, save the artifacts, measure recall@10 at nprobes 3 / refine 5.
async fn build(
    loc: &Location,
    index_type: VectorIndexType,
    metric: Metric,
    distributed: bool,
    workers: usize,
    artifacts: &Path,
    data: &Matrix,
    queries: &Matrix,
) -> f64 {
    let mut req = VectorIndexRequest::new("vector", index_type, metric);
    req.partitions = Some(32);
    req.sub_vectors = index_type.uses_pq().then_some(8);
    // Auto is distributed at 32 partitions; lance's trainer only on request.
    req.training = if distributed {
        Training::Auto
    } else {
        Training::Lance
    };
    req.save_artifacts = Some(artifacts.to_path_buf());
    let report = create_vector_index(loc, &req, &lanceflow::local_executor(workers), &NoProgress)
        .await
        .unwrap();
    let expected = if distributed {
        Training::Distributed
    } else {
        Training::Lance
    };
    assert_eq!(report.trained_by, Some(expected));
    let mut search = VectorSearchRequest::new(queries.clone(), 10);
    search.nprobes = Some(3);
    search.refine_factor = Some(5);
    search.columns = Some(vec!["id".into()]);
    let found = search_vectors(loc, None, &search, 2).await.unwrap();
    let ids: Vec<Vec<u64>> = found
        .results
        .iter()
        .map(|q| {
            q.hits
                .iter()
                .map(|h| h.fields["id"].as_u64().unwrap())
                .collect()
        })
        .collect();
    recall_at_k(&brute_force_knn(data, queries, 10, metric), &ids)
}

/// Mean squared distance of every row (normalised for cosine) to its centroid.
fn objective(data: &Matrix, centroids: &Matrix, metric: Metric) -> f64 {
    let mut rows = data.clone();
    if metric == Metric::Cosine {
        lanceflow::index::vector::kmeans::normalize_rows(&mut rows);
    }
    let p = Partial::of_shard(&rows, centroids, KMeansDistance::L2).unwrap();
    p.loss / p.rows() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_training_matches_lance_training() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (index_type, metric)) in [
        (VectorIndexType::IvfPq, Metric::L2),
        (VectorIndexType::IvfPq, Metric::Cosine),
        (VectorIndexType::IvfFlat, Metric::L2),
    ]
    .into_iter()
    .enumerate()
    {
        let (loc, data, queries) =
            dataset(dir.path(), &format!("t{i}.lance"), 12_000, 5 + i as u64).await;
        let lance_dir = dir.path().join(format!("lance-{i}"));
        let ours_dir = dir.path().join(format!("ours-{i}"));
        let lance_recall = build(
            &loc, index_type, metric, false, 2, &lance_dir, &data, &queries,
        )
        .await;
        let ours_recall = build(
            &loc, index_type, metric, true, 2, &ours_dir, &data, &queries,
        )
        .await;
        let lance_c = read_npy(&lance_dir.join("centroids.npy")).unwrap();
        let ours_c = read_npy(&ours_dir.join("centroids.npy")).unwrap();
        let (ol, oo) = (
            objective(&data, &lance_c, metric),
            objective(&data, &ours_c, metric),
        );
        eprintln!("{index_type:?}/{metric:?}: recall ours {ours_recall} lance {lance_recall}; objective ours {oo} lance {ol}");
        assert!(
            ours_recall >= lance_recall - 0.01,
            "{index_type:?}/{metric:?}: recall {ours_recall} vs lance's {lance_recall}"
        );
        assert_eq!(ours_c.rows(), 32);
        // lance's k-means is unseeded: its objective varies run to run (one
        // run here had ours 2.3% above it at equal recall), hence 3%.
        assert!(
            oo <= ol * 1.03,
            "{index_type:?}/{metric:?}: k-means objective {oo} vs lance's {ol}"
        );
        if index_type.uses_pq() {
            let book = read_npy(&ours_dir.join("codebook.npy")).unwrap();
            assert_eq!((book.rows(), book.dim), (256, DIM));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_training_is_reproducible_and_leaves_no_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let (loc, data, queries) = dataset(dir.path(), "r.lance", 6_000, 3).await;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    build(
        &loc,
        VectorIndexType::IvfPq,
        Metric::L2,
        true,
        2,
        &a,
        &data,
        &queries,
    )
    .await;
    build(
        &loc,
        VectorIndexType::IvfPq,
        Metric::L2,
        true,
        2,
        &b,
        &data,
        &queries,
    )
    .await;
    for file in ["centroids.npy", "codebook.npy"] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between two runs with the same seed");
    }
    let scratch = dir.path().join("r.lance").join("_lanceflow").join("train");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}
