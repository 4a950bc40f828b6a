use lanceflow::dataset::versions::{cleanup, create_tag, delete_tag, list_tags, restore, versions};
use lanceflow::ingest::{ingest, IngestRequest, WriteMode};
use lanceflow::progress::NoProgress;
use lanceflow::{Error, VersionSpec};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_time_travel_restore_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let loc = local(dir.path(), "kb.lance");
    let exec = lanceflow::local_executor(2);
    for (i, mode) in [WriteMode::Create, WriteMode::Append, WriteMode::Append]
        .into_iter()
        .enumerate()
    {
        let f = write_jsonl(dir.path(), &format!("{i}.jsonl"), i * 100, 100);
        ingest(&loc, &IngestRequest::new(vec![f], mode), &exec, &NoProgress)
            .await
            .unwrap();
    }
    assert_eq!(versions(&loc).await.unwrap().len(), 3);

    create_tag(&loc, "first", Some(1)).await.unwrap();
    let err = create_tag(&loc, "first", Some(2)).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert_eq!(list_tags(&loc).await.unwrap()[0].version, 1);

    let info = lanceflow::dataset::info::info(&loc, Some(&VersionSpec::Tag("first".into())))
        .await
        .unwrap();
    assert_eq!((info.version, info.rows, info.latest_version), (1, 100, 3));
    assert_eq!(info.tags, vec!["first".to_string()]);
    let err = lanceflow::dataset::info::info(&loc, Some(&VersionSpec::Number(99)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    let r = restore(&loc, &VersionSpec::Number(2)).await.unwrap();
    assert_eq!((r.restored, r.new_version), (2, 4));
    assert_eq!(id_sum(&loc, None).await, expected_sum(&[(0, 200)]));

    // Dry run removes nothing; a real cleanup keeps the tagged version 1 and the latest.
    let dry = cleanup(&loc, std::time::Duration::ZERO, true)
        .await
        .unwrap();
    assert!(dry.old_versions >= 1, "{dry:?}");
    assert_eq!(versions(&loc).await.unwrap().len(), 4);
    let done = cleanup(&loc, std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(done.old_versions, dry.old_versions);
    let left: Vec<u64> = versions(&loc)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert!(left.contains(&1) && left.contains(&4), "{left:?}");
    assert_eq!(id_sum(&loc, Some(1)).await, expected_sum(&[(0, 100)]));

    delete_tag(&loc, "first").await.unwrap();
    assert!(matches!(
        delete_tag(&loc, "first").await.unwrap_err(),
        Error::NotFound(_)
    ));
}
