use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::{NoProgress, ProgressEvent, RecordingProgress};
use lanceflow::Error;

use crate::common::*;

fn request(inputs: Vec<std::path::PathBuf>, mode: WriteMode, max_rows: usize) -> IngestRequest {
    let mut r = IngestRequest::new(inputs, mode);
    r.max_rows_per_file = max_rows;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_files_land_as_one_version_with_exact_rows() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = vec![
        write_jsonl(dir.path(), "a.jsonl", 0, 2500),
        write_jsonl(dir.path(), "b.jsonl", 2500, 1500),
        write_jsonl(dir.path(), "c.jsonl", 4000, 1000),
    ];
    let loc = local(dir.path(), "kb.lance");
    let progress = RecordingProgress::default();
    let report = ingest(
        &loc,
        &request(inputs, WriteMode::Create, 1000),
        &lanceflow::local_executor(2),
        &progress,
    )
    .await
    .unwrap();
    assert_eq!(report.version, 1);
    assert_eq!(report.rows_written, 5000);
    assert_eq!(report.total_rows, 5000);
    // 2500 → 1000+1000+500, 1500 → 1000+500, 1000 → 1000
    assert_eq!(report.fragments_written, 6);
    let ds = loc.open(None).await.unwrap();
    assert_eq!(ds.fragments().len(), 6);
    let mut ids: Vec<u64> = ds.fragments().iter().map(|f| f.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "fragment ids must be unique");
    assert_eq!(id_sum(&loc, None).await, expected_sum(&[(0, 5000)]));
    let finished = progress
        .events()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::TaskFinished { ok: true, .. }))
        .count();
    assert_eq!(finished, report.tasks);
    assert_eq!(report.inputs, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_file_commits_nothing_and_lists_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "kb.lance");
    let first = write_jsonl(dir.path(), "first.jsonl", 0, 100);
    ingest(
        &loc,
        &request(vec![first], WriteMode::Create, 1000),
        &lanceflow::local_executor(2),
        &NoProgress,
    )
    .await
    .unwrap();

    let good = write_jsonl(dir.path(), "good.jsonl", 100, 100);
    let bad = dir.path().join("bad.jsonl");
    let mut text = std::fs::read_to_string(write_jsonl(dir.path(), "tmp.jsonl", 200, 50)).unwrap();
    text.push_str(
        "{\"id\": 999, \"title\": \"x\", \"text\": \"y\", \"score\": \"not a number\"}\n",
    );
    std::fs::write(&bad, text).unwrap();

    let err = ingest(
        &loc,
        &request(vec![good, bad], WriteMode::Append, 1000),
        &lanceflow::local_executor(2),
        &NoProgress,
    )
    .await
    .unwrap_err();
    match &err {
        Error::TasksFailed {
            failures, total, ..
        } => {
            assert_eq!(*total, 2);
            assert_eq!(failures.len(), 1);
            assert!(failures[0].label.ends_with("bad.jsonl"));
            assert!(
                failures[0].message.contains("line 51"),
                "{}",
                failures[0].message
            );
        }
        other => panic!("expected TasksFailed, got {other:?}"),
    }
    assert_eq!(latest_version(&loc).await, 1);
    assert_eq!(id_sum(&loc, None).await, expected_sum(&[(0, 100)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_and_overwrite_keep_history() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "kb.lance");
    let exec = lanceflow::local_executor(2);
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 300);
    let b = write_jsonl(dir.path(), "b.jsonl", 300, 200);
    ingest(
        &loc,
        &request(vec![a.clone()], WriteMode::Create, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    let r = ingest(
        &loc,
        &request(vec![b.clone()], WriteMode::Append, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((r.version, r.read_version, r.total_rows), (2, 1, 500));
    let r = ingest(
        &loc,
        &request(vec![b], WriteMode::Overwrite, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((r.version, r.total_rows), (3, 200));
    assert_eq!(id_sum(&loc, Some(1)).await, expected_sum(&[(0, 300)]));
    assert_eq!(id_sum(&loc, Some(2)).await, expected_sum(&[(0, 500)]));
    assert_eq!(id_sum(&loc, None).await, expected_sum(&[(300, 200)]));

    // create refuses an existing dataset, append refuses a missing one
    let err = ingest(
        &loc,
        &request(vec![a.clone()], WriteMode::Create, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    let missing = local(dir.path(), "missing.lance");
    let err = ingest(
        &missing,
        &request(vec![a], WriteMode::Append, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert_eq!(latest_version(&loc).await, 3);
}

/// The file format and row id setting a new dataset is created with, kept
/// by appends and overwrites; a different one for an existing dataset is
/// refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_datasets_layout_is_kept_by_later_writes() {
    use lance_file::version::LanceFileVersion;
    use lanceflow::ingest::{Layout, StorageVersion};

    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "kb.lance");
    let exec = lanceflow::local_executor(2);
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 300);
    let b = write_jsonl(dir.path(), "b.jsonl", 300, 200);
    let format = |ds: &lance::dataset::Dataset| {
        ds.manifest()
            .data_storage_format
            .lance_file_format()
            .to_selector()
    };
    let mut create = request(vec![a.clone()], WriteMode::Create, 100);
    create.layout = Layout {
        storage_version: Some("2.0".parse::<StorageVersion>().unwrap()),
        stable_row_ids: true,
    };
    ingest(&loc, &create, &exec, &NoProgress).await.unwrap();
    let ds = loc.open(None).await.unwrap();
    assert_eq!(format(&ds), LanceFileVersion::V2_0);
    assert!(ds.manifest().uses_stable_row_ids());
    ingest(
        &loc,
        &request(vec![b.clone()], WriteMode::Append, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    let ds = loc.open(None).await.unwrap();
    assert_eq!(format(&ds), LanceFileVersion::V2_0);
    assert!(ds.manifest().uses_stable_row_ids());
    // Stable row ids run 0..n over both writes.
    let mut scanner = ds.scan();
    scanner.with_row_id().project(&["id"]).unwrap();
    let batch = scanner.try_into_batch().await.unwrap();
    let row_ids = batch
        .column_by_name("_rowid")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::UInt64Array>()
        .unwrap();
    let mut row_ids: Vec<u64> = row_ids.values().to_vec();
    row_ids.sort();
    assert_eq!(row_ids, (0..500).collect::<Vec<u64>>());
    // An overwrite keeps the format unless asked.
    ingest(
        &loc,
        &request(vec![b.clone()], WriteMode::Overwrite, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        format(&loc.open(None).await.unwrap()),
        LanceFileVersion::V2_0
    );
    let version = latest_version(&loc).await;
    let mut other = request(vec![b.clone()], WriteMode::Append, 100);
    other.layout.storage_version = Some("2.1".parse().unwrap());
    let err = ingest(&loc, &other, &exec, &NoProgress).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("stores lance format 2.0, not 2.1")),
        "{err}"
    );
    let plain = local(dir.path(), "plain.lance");
    ingest(
        &plain,
        &request(vec![a.clone()], WriteMode::Create, 100),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(!plain
        .open(None)
        .await
        .unwrap()
        .manifest()
        .uses_stable_row_ids());
    let mut stable = request(vec![b], WriteMode::Append, 100);
    stable.layout.stable_row_ids = true;
    let err = ingest(&plain, &stable, &exec, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("without stable row ids")),
        "{err}"
    );
    assert_eq!(latest_version(&loc).await, version, "nothing committed");
    assert_eq!(latest_version(&plain).await, 1, "nothing committed");
}

fn sample_batch(start: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("title", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(start..start + n)),
            Arc::new(StringArray::from_iter_values(
                (start..start + n).map(|i| format!("t{i}")),
            )),
            Arc::new(Float64Array::from_iter_values(
                (start..start + n).map(|i| i as f64),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_arrow_and_csv_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let exec = lanceflow::local_executor(2);

    let pq = dir.path().join("a.parquet");
    let batch = sample_batch(0, 1000);
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let ipc = dir.path().join("b.arrow");
    let batch = sample_batch(1000, 500);
    let mut w = arrow_ipc::writer::FileWriter::try_new(
        std::fs::File::create(&ipc).unwrap(),
        &batch.schema(),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();

    let loc = local(dir.path(), "kb.lance");
    let r = ingest(
        &loc,
        &request(vec![pq], WriteMode::Create, 300),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((r.rows_written, r.fragments_written), (1000, 4));
    let r = ingest(
        &loc,
        &request(vec![ipc], WriteMode::Append, 300),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(r.total_rows, 1500);

    // CSV with columns in another order, appended with the dataset's types.
    let csv = dir.path().join("c.csv");
    std::fs::write(&csv, "title,score,id\nx,1.5,1500\n\"y, quoted\",2.5,1501\n").unwrap();
    let r = ingest(
        &loc,
        &request(vec![csv], WriteMode::Append, 300),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(r.total_rows, 1502);
    assert_eq!(id_sum(&loc, None).await, expected_sum(&[(0, 1502)]));

    // A CSV whose header names a column the dataset lacks is refused at plan time.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,colour\n1,red\n").unwrap();
    let err = ingest(
        &loc,
        &request(vec![bad], WriteMode::Append, 300),
        &exec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    assert_eq!(latest_version(&loc).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_projection() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "kb.lance");
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 10);
    let mut req = request(vec![a.clone()], WriteMode::Create, 100);
    req.columns = Some(vec!["id".into(), "text".into()]);
    ingest(&loc, &req, &lanceflow::local_executor(1), &NoProgress)
        .await
        .unwrap();
    let ds = loc.open(None).await.unwrap();
    let names: Vec<_> = ds.schema().fields.iter().map(|f| f.name.clone()).collect();
    assert_eq!(names, vec!["id", "text"]);

    req.columns = Some(vec!["nope".into()]);
    req.mode = WriteMode::Overwrite;
    let err = ingest(&loc, &req, &lanceflow::local_executor(1), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'nope'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_results_round_trip_through_json() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "kb.lance");
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 50);
    let plan = lanceflow::ingest::plan(&loc, &request(vec![a], WriteMode::Create, 20), 1)
        .await
        .unwrap();
    let specs = lanceflow::spine::to_specs::<lanceflow::ingest::IngestOp>(&plan.tasks).unwrap();
    let wire = serde_json::to_string(&specs).unwrap();
    let back: Vec<lanceflow::spine::TaskSpec> = serde_json::from_str(&wire).unwrap();
    assert_eq!(back, specs);
    let task: lanceflow::ingest::IngestTask =
        serde_json::from_value(back[0].payload.clone()).unwrap();
    assert_eq!(task, plan.tasks[0]);

    // Execute through the string boundary a remote worker uses, then commit.
    let result =
        lanceflow::operations::execute_task_json(&serde_json::to_string(&back[0]).unwrap())
            .await
            .unwrap();
    let output: lanceflow::ingest::IngestTaskOutput = serde_json::from_str(&result).unwrap();
    assert_eq!(output.rows, 50);
    assert_eq!(output.fragments.len(), 3);
    let again: lanceflow::ingest::IngestTaskOutput =
        serde_json::from_str(&serde_json::to_string(&output).unwrap()).unwrap();
    assert_eq!(again, output);
    let (version, rows) = lanceflow::ingest::commit(&plan, vec![again]).await.unwrap();
    assert_eq!((version, rows), (1, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_uri_works_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_jsonl(dir.path(), "a.jsonl", 0, 100);
    let loc = lanceflow::Location::resolve("memory://kb-test", &lanceflow::StorageOptions::new())
        .unwrap();
    let r = ingest(
        &loc,
        &request(vec![a], WriteMode::Create, 30),
        &lanceflow::local_executor(2),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((r.total_rows, r.fragments_written), (100, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_large_jsonl_file_is_split_over_workers_into_full_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_jsonl(dir.path(), "big.jsonl", 0, 10_000);
    let loc = local(dir.path(), "kb.lance");
    let req = request(vec![input.clone()], WriteMode::Create, 1000);
    let plan = lanceflow::ingest::plan(&loc, &req, 2).await.unwrap();
    assert!(
        plan.tasks.len() >= 2,
        "a big file must be split: {} task(s)",
        plan.tasks.len()
    );
    let report = ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        (report.rows_written, report.fragments_written, report.inputs),
        (10_000, 10, 1)
    );
    assert!(report.tasks >= 2);
    let ds = loc.open(None).await.unwrap();
    assert!(ds.fragments().iter().all(|f| f.physical_rows == Some(1000)));
    assert_eq!(id_sum(&loc, None).await, expected_sum(&[(0, 10_000)]));
    // Row order is the file's order.
    let ids = ids(&loc, None).await;
    assert_eq!(ids, (0..10_000).collect::<Vec<i64>>());

    // A bad line late in the file is reported with its absolute line number.
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("{\"id\": 1, \"title\": oops}\n");
    let bad = dir.path().join("late-bad.jsonl");
    std::fs::write(&bad, text).unwrap();
    let req = request(vec![bad], WriteMode::Append, 1000);
    let err = ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("line 10001"), "{err}");
    assert_eq!(latest_version(&loc).await, 1);
}
