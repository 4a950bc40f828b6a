//! Data evolution: columns computed by SQL per fragment group, or merged
//! back by row address, each landing as one `Merge` commit; checked row by
//! row against values computed here, and bad input leaving the dataset as
//! it was.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use lanceflow::evolve::{
    add_columns, merge_columns, AddColumnsRequest, ColumnTransform, HostTransform,
};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::{Error, Location};

use crate::common::*;

/// 500 rows in 5 fragments, rows with id % 7 == 0 deleted.
async fn dataset(dir: &std::path::Path) -> Location {
    let file = write_jsonl(dir, "rows.jsonl", 0, 500);
    let loc = local(dir, "evolve");
    let mut req = IngestRequest::new(vec![file], WriteMode::Create);
    req.max_rows_per_file = 100;
    ingest(&loc, &req, &lanceflow::local_executor(2), &NoProgress)
        .await
        .unwrap();
    let mut ds = loc.open(None).await.unwrap();
    ds.delete("id % 7 = 0").await.unwrap();
    loc
}

/// (id, _rowaddr) of every live row.
async fn addresses(loc: &Location) -> (Vec<i64>, Vec<u64>) {
    let ds = loc.open(None).await.unwrap();
    let mut scan = ds.scan();
    scan.project(&["id"]).unwrap();
    scan.with_row_address();
    let batches = collect(&scan).await;
    let mut ids = Vec::new();
    let mut addrs = Vec::new();
    for b in batches {
        ids.extend(b.column(0).as_primitive::<Int64Type>().values().iter());
        addrs.extend(
            b.column_by_name("_rowaddr")
                .unwrap()
                .as_primitive::<arrow_array::types::UInt64Type>()
                .values()
                .iter(),
        );
    }
    (ids, addrs)
}

fn keyed(ids: &[i64], addrs: &[u64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("_rowaddr", DataType::UInt64, false),
        Field::new("tenfold", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(addrs.to_vec())),
            Arc::new(Int64Array::from(
                ids.iter().map(|i| i * 10).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_columns_are_computed_per_fragment_group_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dataset(dir.path()).await;
    let before = latest_version(&loc).await;
    let live = 500 - (0..500).filter(|i| i % 7 == 0).count() as u64;
    let exec = lanceflow::local_executor(2);

    // Bad input first: nothing is committed.
    let bad: [(&[&str], &str); 6] = [
        (&["id=id + 1"], "already exists"),
        (&["x=length(nosuch)"], "x"),
        (&["x=length(text"], "not valid SQL"),
        (&["x=1", "x=2"], "twice"),
        (&["x"], "NAME=EXPRESSION"),
        (&["_rowaddr=1"], "reserved"),
    ];
    for (exprs, says) in bad {
        let err = match AddColumnsRequest::sql(exprs) {
            Ok(req) => add_columns(&loc, &req, &exec, &NoProgress)
                .await
                .unwrap_err(),
            Err(e) => e,
        };
        assert!(
            matches!(err, Error::InvalidInput(_) | Error::AlreadyExists(_)),
            "{exprs:?}: {err:?}"
        );
        assert!(err.to_string().contains(says), "{exprs:?}: {err}");
        assert!(
            !err.to_string().contains(".rs:"),
            "a source location: {err}"
        );
        assert_eq!(latest_version(&loc).await, before, "{exprs:?}");
    }
    let mut req = AddColumnsRequest::sql(&["n_chars=length(text)", "double = score * 2"]).unwrap();
    req.batch_size = 0;
    assert!(add_columns(&loc, &req, &exec, &NoProgress).await.is_err());
    // A transform for a host this process does not have.
    let host = AddColumnsRequest::new(ColumnTransform::Host(HostTransform {
        payload: "gASVAAAAAAAAAACMAS6ULg==".into(),
        read_columns: None,
        output_schema: None,
    }));
    let err = add_columns(&loc, &host, &exec, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
    assert_eq!(latest_version(&loc).await, before);

    req.batch_size = 64;
    let report = add_columns(&loc, &req, &exec, &NoProgress).await.unwrap();
    assert_eq!(report.version, before + 1);
    assert_eq!((report.tasks, report.fragments, report.rows), (2, 5, live));
    assert_eq!(report.fragments_null, 0);
    assert!(
        report.columns[0].starts_with("n_chars") && report.columns[1].starts_with("double"),
        "{:?}",
        report.columns
    );

    // Row by row against values computed here; the old columns unchanged.
    let batches = scan_columns(&loc, None, &["id", "text", "score", "n_chars", "double"]).await;
    let mut rows = 0u64;
    for b in &batches {
        let ids = b.column(0).as_primitive::<Int64Type>();
        let text = arrow_cast::cast(b.column(1), &DataType::Utf8).unwrap();
        let text = text.as_string::<i32>();
        let score = b.column(2).as_primitive::<Float64Type>();
        let n_chars = arrow_cast::cast(b.column(3), &DataType::Int64).unwrap();
        let n_chars = n_chars.as_primitive::<Int64Type>();
        let double = b.column(4).as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let id = ids.value(r);
            assert_ne!(id % 7, 0, "a deleted row came back");
            assert_eq!(text.value(r), format!("text of document {id}"));
            assert_eq!(n_chars.value(r) as usize, text.value(r).chars().count());
            assert_eq!(score.value(r), id as f64 * 0.5);
            assert_eq!(double.value(r), score.value(r) * 2.0);
            rows += 1;
        }
    }
    assert_eq!(rows, live);
    // The same name again is refused.
    let again = AddColumnsRequest::sql(&["double=1"]).unwrap();
    let err = add_columns(&loc, &again, &exec, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_keyed_by_address_merge_back_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dataset(dir.path()).await;
    let before = latest_version(&loc).await;
    let (ids, addrs) = addresses(&loc).await;

    // Bad input: nothing is committed.
    let reversed = |v: &[u64]| v.iter().rev().copied().collect::<Vec<_>>();
    let rev_ids: Vec<i64> = ids.iter().rev().copied().collect();
    let all = keyed(&rev_ids, &reversed(&addrs));
    let no_addr = all.project(&[1]).unwrap();
    let mut doubled = addrs.clone();
    doubled[1] = doubled[0];
    let dup = keyed(&ids, &doubled);
    let short = keyed(&ids[1..], &addrs[1..]);
    let mut deleted = addrs.clone();
    deleted[0] = 0; // fragment 0, offset 0: id 0, deleted

    let on_deleted = keyed(&ids, &deleted);
    let id_clash = {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_rowaddr", DataType::UInt64, false),
            Field::new("id", DataType::Int64, true),
        ]));
        RecordBatch::try_new(schema, all.columns().to_vec()).unwrap()
    };
    for (batch, says) in [
        (&no_addr, "_rowaddr"),
        (&dup, "twice"),
        (&short, "rows but"),
        (&on_deleted, "not a live row"),
        (&id_clash, "no new columns"),
    ] {
        let err = merge_columns(&loc, None, std::slice::from_ref(batch), false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(says), "{says}: {err}");
        assert_eq!(latest_version(&loc).await, before, "{says}");
    }
    // Fragment 0 only: refused unless the rest may read null.
    let first: Vec<usize> = (0..addrs.len()).filter(|&i| addrs[i] >> 32 == 0).collect();
    let part = keyed(
        &first.iter().map(|&i| ids[i]).collect::<Vec<_>>(),
        &first.iter().map(|&i| addrs[i]).collect::<Vec<_>>(),
    );
    let err = merge_columns(&loc, None, std::slice::from_ref(&part), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing: 1-4"), "{err}");
    assert_eq!(latest_version(&loc).await, before);

    // Every row, given in reverse order and in two batches.
    let half = all.num_rows() / 2;
    let batches = [all.slice(0, half), all.slice(half, all.num_rows() - half)];
    let report = merge_columns(&loc, None, &batches, false).await.unwrap();
    assert_eq!(report.version, before + 1);
    assert_eq!((report.fragments, report.rows), (5, ids.len() as u64));
    let check = scan_columns(&loc, None, &["id", "tenfold"]).await;
    let mut n = 0;
    for b in &check {
        let id = b.column(0).as_primitive::<Int64Type>();
        let ten = b.column(1).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            assert_eq!(ten.value(r), id.value(r) * 10);
            n += 1;
        }
    }
    assert_eq!(n, ids.len());

    // Partial coverage allowed: the other fragments read null.
    let part = {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_rowaddr", DataType::UInt64, false),
            Field::new("first_only", DataType::Int64, true),
        ]));
        RecordBatch::try_new(schema, part.columns().to_vec()).unwrap()
    };
    let report = merge_columns(&loc, None, std::slice::from_ref(&part), true)
        .await
        .unwrap();
    assert_eq!((report.fragments, report.fragments_null), (1, 4));
    let check = scan_columns(&loc, None, &["id", "first_only"]).await;
    for b in &check {
        let id = b.column(0).as_primitive::<Int64Type>();
        let col = b.column(1).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            if id.value(r) < 100 {
                assert_eq!(col.value(r), id.value(r) * 10);
            } else {
                assert!(col.is_null(r), "row {} should read null", id.value(r));
            }
        }
    }
}
