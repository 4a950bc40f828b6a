"""``lanceflow.ray`` against lance-ray 0.5's public API, on the local Ray
cluster, results checked through pylance and brute force.

Which lance-ray test each one covers (written from their intent):
- tests/test_basic_read_write.py: write/read round trip, projection, filter,
  append, ``dataset_options={"version": v}`` → ``test_write_read_round_trip``;
  ``fragment_ids`` and ``with_metadata`` (and ``create_scalar_index(fragment_ids=)``)
  → ``test_read_fragments_with_row_addresses``;
  ``schema``, ``data_storage_version``, ``enable_stable_row_ids`` →
  ``test_write_layout_and_schema``; namespaces → test_namespace.py;
  ``add_columns``, ``add_columns_from``, ``merge_columns_from`` →
  test_evolve.py ``test_lance_ray_data_evolution``; blobs wait
  (``test_what_waits_raises_by_name`` checks they fail by name).
- tests/test_fragment.py ``TestLanceFragmentWriterCommitter`` (basic, stable
  row ids, transform, append, empty, None values) → ``test_fragment_writer_and_committer``.
- tests/test_distributed_indexing.py: scalar (BTREE, FTS→INVERTED) and vector
  (IVF_FLAT with segments) builds returning a ``LanceDataset``,
  ``optimize_indices``, ``vector_search`` → ``test_indexes_and_search``;
  ``num_indices_to_merge`` 0 / N / default counted in segments as lance counts
  them, ``ivf_centroids`` as an Arrow array → ``test_num_indices_to_merge_as_lance_counts_it``;
  IVF_RQ (with and without ``rabitq_model``) and IVF_HNSW_FLAT →
  ``test_rabitq_and_hnsw_flat_indexes``; BLOOMFILTER → test_evolve.py
  ``test_bloomfilter_filters_like_a_scan`` (RTREE needs lance's ``geo``
  feature: a clear error); namespaces → test_namespace.py.
- tests/test_distributed_compaction.py: compaction metrics, ``None`` when
  nothing to do → ``test_compaction``; ``compact_database`` → test_namespace.py.
- tests/test_distributed_search.py (its end-to-end intent) and test_pool.py:
  global top-k sorted by ``_distance`` equal to brute force, the global pool
  reused across calls → ``test_indexes_and_search``, ``test_global_pool``.
"""

import numpy as np
import pyarrow as pa
import pytest

import lanceflow
import lanceflow.ray as lr

lance = pytest.importorskip("lance")


def vectors_table(rows=400, dim=8, seed=3):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, dim)).astype(np.float32)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), dim)
    text = [f"document {i} about {'rivers' if i % 3 else 'mountains'}" for i in range(rows)]
    return pa.table({"id": pa.array(range(rows), pa.int64()), "text": text, "vector": vec}), data


def test_write_read_round_trip(cluster, tmp_path):
    import ray

    uri = str(tmp_path / "rw.lance")
    ds = ray.data.from_items([{"id": i, "age": 20 + i % 30, "name": f"n{i}"} for i in range(100)])
    assert lr.write_lance(ds, uri, min_rows_per_file=10, max_rows_per_file=40) is None
    assert len(lance.dataset(uri).get_fragments()) >= 3
    assert lance.dataset(uri).count_rows() == 100
    read = lr.read_lance(uri, columns=["id", "age"], filter="age > 40")
    rows = read.take_all()
    assert sorted(r["id"] for r in rows) == [i for i in range(100) if 20 + i % 30 > 40]
    assert set(rows[0]) == {"id", "age"}
    more = ray.data.from_items([{"id": 100 + i, "age": 1, "name": "x"} for i in range(10)])
    lr.write_lance(more, uri, mode="append")
    assert lr.read_lance(uri, dataset_options={"version": 1}).count() == 100
    assert lr.read_lance(uri).count() == 110
    with pytest.raises(ValueError):
        lr.write_lance(None, uri)


def test_indexes_and_search(cluster, tmp_path):
    table, data = vectors_table()
    uri = str(tmp_path / "vec.lance")
    lance.write_dataset(table, uri, max_rows_per_file=100)
    ds = lr.create_scalar_index(uri, column="id", index_type="BTREE", num_workers=2)
    assert isinstance(ds, lance.LanceDataset)
    ds = lr.create_scalar_index(uri, column="text", index_type="FTS", num_workers=2)
    names = {i["name"]: i for i in ds.list_indices()}
    assert {"id_idx", "text_idx"} <= set(names)
    assert ds.to_table(full_text_query="mountains").num_rows == len(range(0, 400, 3))
    ds = lr.create_index(
        uri, "vector", "IVF_FLAT", num_workers=2, num_segments=2, num_partitions=4, metric="l2"
    )
    assert isinstance(ds, lance.LanceDataset)
    assert any(i["type"].startswith("IVF") or "IVF" in str(i) for i in ds.list_indices())
    # The global top k equals brute force (all partitions probed).
    q = data[17] + 0.01
    hits = lr.vector_search(
        uri, nearest={"column": "vector", "q": q, "k": 10, "nprobes": 4}, columns=["id"], num_workers=2
    )
    exact = np.argsort(((data - q) ** 2).sum(axis=1))[:10]
    assert hits.column("id").to_pylist() == exact.tolist()
    distances = hits.column("_distance").to_pylist()
    assert distances == sorted(distances)
    # Rows appended after the build get indexed by optimize_indices.
    extra, _ = vectors_table(rows=50, seed=9)
    extra = extra.set_column(0, "id", pa.array(range(400, 450), pa.int64()))
    lance.write_dataset(extra, uri, mode="append")
    ds = lr.optimize_indices(uri)
    assert isinstance(ds, lance.LanceDataset) and ds.count_rows() == 450
    assert ds.stats.index_stats("id_idx")["num_unindexed_rows"] == 0


def segments(uri, name="vector_idx"):
    """Our count of an index's segments, and pylance's."""
    ours = {i["name"]: i["segments"] for i in lanceflow.info(uri)["indices"]}[name]
    theirs = lance.dataset(uri).stats.index_stats(name)["num_indices"]
    assert ours == theirs, (ours, theirs)
    return ours


def test_num_indices_to_merge_as_lance_counts_it(cluster, tmp_path):
    """lance's `num_indices_to_merge`: 0 adds the new rows as a segment of
    their own, N merges the N newest segments with them, and the default 1
    folds them into the newest. Centroids given as an Arrow array are used
    as they are (no file on the way)."""
    table, data = vectors_table(rows=300)
    uri = str(tmp_path / "merge.lance")
    lance.write_dataset(table, uri, max_rows_per_file=50)
    centroids = pa.FixedSizeListArray.from_arrays(pa.array(data[:4].ravel()), 8)
    lr.create_index(uri, "vector", "IVF_FLAT", num_workers=2, num_segments=3, ivf_centroids=centroids)
    assert segments(uri) == 3

    def append(seed, start):
        extra, _ = vectors_table(rows=20, seed=seed)
        extra = extra.set_column(0, "id", pa.array(range(start, start + 20), pa.int64()))
        lance.write_dataset(extra, uri, mode="append")

    append(5, 300)
    lr.optimize_indices(uri, num_indices_to_merge=0)
    assert segments(uri) == 4
    append(6, 320)
    lr.optimize_indices(uri, num_indices_to_merge=2)
    assert segments(uri) == 3  # the two newest and the new rows became one
    append(7, 340)
    ds = lr.optimize_indices(uri)
    assert segments(uri) == 3 and ds.stats.index_stats("vector_idx")["num_unindexed_rows"] == 0
    q = data[123]
    hits = lr.vector_search(uri, nearest={"column": "vector", "q": q, "k": 1, "nprobes": 4}, num_workers=2)
    assert hits.column("id").to_pylist() == [123]


def test_compaction(cluster, tmp_path):
    uri = str(tmp_path / "small.lance")
    for i in range(5):
        part = pa.table({"id": pa.array(range(i * 10, i * 10 + 10), pa.int64())})
        lance.write_dataset(part, uri, mode="append" if i else "create")
    metrics = lr.compact_files(
        uri, compaction_options={"target_rows_per_fragment": 100, "num_threads": 1}, num_workers=2
    )
    assert (metrics.fragments_removed, metrics.fragments_added) == (5, 1)
    ds = lance.dataset(uri)
    assert len(ds.get_fragments()) == 1
    assert sorted(ds.to_table().column("id").to_pylist()) == list(range(50))
    assert lr.compact_files(uri, num_workers=2) is None


def test_global_pool(cluster, tmp_path):
    table, data = vectors_table(rows=200)
    uri = str(tmp_path / "pool.lance")
    lance.write_dataset(table, uri, max_rows_per_file=50)
    lr.create_index(uri, "vector", "IVF_FLAT", num_partitions=2, num_workers=2)
    pool = lr.init_global_pool(2)
    try:
        assert lr.init_global_pool(2) is pool and lr.get_global_pool() is pool
        with pytest.warns(UserWarning, match="already has 2 workers"):
            assert lr.init_global_pool(3) is pool
        for row in (3, 99):
            hits = lr.vector_search(uri, nearest={"column": "vector", "q": data[row], "k": 1, "nprobes": 2})
            assert hits.column("id").to_pylist() == [row]
        assert lr.get_global_pool() is pool, "a call must not drop the global pool"
    finally:
        lr.clear_global_pool(close=True)
    assert lr.get_global_pool() is None
    with pytest.raises(ValueError):
        lr.init_global_pool(0)


def test_what_waits_raises_by_name(cluster, tmp_path):
    table, _ = vectors_table(rows=40)
    uri = str(tmp_path / "w.lance")
    lance.write_dataset(table, uri)
    version = lance.dataset(uri).version
    with pytest.raises(NotImplementedError, match="scanner_options: .*batch_size"):
        lr.read_lance(uri, scanner_options={"batch_size": 8})
    rows = lr.read_lance(uri, scanner_options={"columns": ["id"], "filter": "id < 5",
                                               "with_row_address": True}).take_all()
    assert sorted(r["id"] for r in rows) == list(range(5)) and {"id", "_rowaddr"} <= set(rows[0])
    with pytest.raises(ValueError, match="filter is given both"):
        lr.read_lance(uri, filter="id < 3", scanner_options={"filter": "id < 5"})
    assert lr.read_lance(uri, override_num_blocks=2, concurrency=1).count() == 40
    with pytest.raises(ValueError, match="override_num_blocks"):
        lr.read_lance(uri, override_num_blocks=0)
    with pytest.raises(NotImplementedError, match="ef"):
        lr.vector_search(uri, nearest={"column": "vector", "q": [0.0] * 8, "k": 1, "ef": 64})
    with pytest.raises(NotImplementedError, match="block_size"):
        lr.create_scalar_index(uri, column="id", index_type="BTREE", block_size=4096)
    with pytest.raises(ValueError, match="num_workers"):
        lr.create_scalar_index(uri, column="id", index_type="BTREE", num_workers=0)
    with pytest.raises(ValueError, match="Must provide either"):
        lr.optimize_indices()
    with pytest.raises(ValueError, match="Index type must be one of"):
        lr.create_scalar_index(uri, column="id", index_type="NOPE")
    assert lance.dataset(uri).version == version


def test_read_fragments_with_row_addresses(cluster, tmp_path):
    table, _ = vectors_table(rows=120)
    uri = str(tmp_path / "frag.lance")
    lance.write_dataset(table.select(["id", "text"]), uri, max_rows_per_file=40)
    fragments = [f.fragment_id for f in lance.dataset(uri).get_fragments()]
    assert len(fragments) == 3
    theirs = lance.dataset(uri).to_table(columns=["id"], with_row_address=True)
    address_of = dict(zip(theirs.column("id").to_pylist(), theirs.column("_rowaddr").to_pylist()))
    rows = lr.read_lance(uri, columns=["id"], fragment_ids=fragments[1:], with_metadata=True).take_all()
    assert set(rows[0]) == {"id", "_rowaddr", "_fragid"}
    assert sorted(r["id"] for r in rows) == list(range(40, 120))
    for r in rows:
        assert r["_rowaddr"] == address_of[r["id"]]
        assert r["_fragid"] == r["_rowaddr"] >> 32 and r["_fragid"] in fragments[1:]
    assert lr.read_lance(uri, fragment_ids=[]).count() == 120, "an empty list reads all"
    with pytest.raises(FileNotFoundError, match="fragment 7 is not in version"):
        lr.read_lance(uri, fragment_ids=[7])
    with pytest.raises(ValueError, match="fragment_ids holds -1"):
        lanceflow.read_lance(uri, fragment_ids=[-1])
    # A scalar index over some fragments only: lance scans the rest.
    ds = lr.create_scalar_index(uri, column="id", index_type="BTREE", fragment_ids=fragments[:2], num_workers=2)
    covered = set()
    for index in ds.list_indices():
        if index["name"] == "id_idx":
            covered |= set(index["fragment_ids"])
    assert covered == set(fragments[:2])
    assert sorted(ds.to_table(filter="id >= 30 AND id < 90").column("id").to_pylist()) == list(range(30, 90))


def test_write_layout_and_schema(cluster, tmp_path):
    import ray

    uri = str(tmp_path / "layout.lance")
    ds = ray.data.from_items([{"id": i, "name": f"n{i}", "extra": i * 2} for i in range(60)])
    schema = pa.schema([("id", pa.int32()), ("name", pa.string())])
    lr.write_lance(
        ds,
        uri,
        schema=schema,
        data_storage_version="2.1",
        enable_stable_row_ids=True,
        min_rows_per_file=10,
        max_rows_per_file=20,
    )
    theirs = lance.dataset(uri)
    assert theirs.data_storage_version == "2.1"
    assert theirs.has_stable_row_ids
    assert theirs.schema == schema
    assert sorted(theirs.to_table().column("id").to_pylist()) == list(range(60))
    # An append keeps the layout; asking for another format is refused.
    more = pa.table({"id": pa.array([100, 101], pa.int64()), "name": ["a", "b"]})
    lanceflow.write_lance(more, uri, mode="append", schema=schema)
    assert lance.dataset(uri).count_rows() == 62
    assert lance.dataset(uri).data_storage_version == "2.1"
    version = lance.dataset(uri).version
    with pytest.raises(ValueError, match="stores lance format 2.1, not 2.0"):
        lanceflow.write_lance(more, uri, mode="append", data_storage_version="2.0")
    with pytest.raises(ValueError, match="unknown storage version '9'"):
        lr.write_lance(ds, str(tmp_path / "bad.lance"), data_storage_version="9")
    with pytest.raises(ValueError, match="names column 'missing'"):
        lanceflow.write_lance(more, uri, mode="append", schema=pa.schema([("missing", pa.int32())]))
    assert lance.dataset(uri).version == version
    plain = str(tmp_path / "plain.lance")
    lanceflow.write_lance(more, plain)
    assert not lance.dataset(plain).has_stable_row_ids
    with pytest.raises(ValueError, match="without stable row ids"):
        lanceflow.write_lance(more, plain, mode="append", enable_stable_row_ids=True)


def test_rabitq_and_hnsw_flat_indexes(cluster, tmp_path):
    """IVF_RQ (one rotation for every segment: minted by the engine, or
    pylance's build_rq_model) and IVF_HNSW_FLAT, built as segments on the
    workers: lance's own search of the index answers as ours, and recall
    against brute force is what the index type promises."""
    table, data = vectors_table(rows=600, dim=16, seed=9)
    queries = data[:20] + np.float32(0.01)
    truth = [np.argsort(((data - q) ** 2).sum(axis=1))[:10].tolist() for q in queries]
    model = lance.lance.indices.build_rq_model(dimension=16, num_bits=5)
    cases = [("IVF_RQ", {}), ("IVF_RQ", {"rabitq_model": model, "num_bits": 5}), ("IVF_HNSW_FLAT", {})]
    for kind, options in cases:
        uri = str(tmp_path / f"{kind}-{len(options)}.lance")
        lance.write_dataset(table, uri, max_rows_per_file=100)
        ds = lr.create_index(uri, "vector", kind, num_partitions=4, num_segments=2, num_workers=2, **options)
        assert ds.describe_indices()[0].index_type.upper().replace("_", "") == kind.replace("_", ""), kind
        found = 0
        for q, expected in zip(queries, truth):
            nearest = {"column": "vector", "q": q, "k": 10, "nprobes": 4}
            theirs = ds.to_table(nearest=nearest, columns=["id"]).column("id").to_pylist()
            ours = lanceflow.vector_search(uri, q, k=10, nprobes=4, columns=["id"], distributed=False)
            assert ours.column("id").to_pylist() == theirs, kind
            spread = lr.vector_search(uri, nearest=nearest, num_workers=2)
            assert sorted(spread.column("id").to_pylist()) == sorted(theirs), kind
            found += len(set(theirs) & set(expected))
        recall = found / (10 * len(queries))
        assert recall >= (0.99 if kind == "IVF_HNSW_FLAT" else 0.8), (kind, recall)
    with pytest.raises(ValueError, match="RaBitQ model has 5 bits, but --num-bits is 2"):
        lr.create_index(uri, "vector", "IVF_RQ", num_partitions=4, rabitq_model=model, num_bits=2)
    with pytest.raises(ValueError, match="not lance's model JSON"):
        lr.create_index(uri, "vector", "IVF_RQ", num_partitions=4, rabitq_model="{}")


def test_fragment_writer_and_committer(cluster, tmp_path):
    import pyarrow.compute as pc
    import ray

    uri = str(tmp_path / "frag_writer.lance")
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    ds = ray.data.range(10).map(lambda r: {"id": r["id"], "name": f"n{r['id']}" if r["id"] % 4 else None})
    staged = ds.map_batches(lr.LanceFragmentWriter(uri, schema=schema), batch_size=5)
    staged.write_datasink(lr.LanceFragmentCommitter(uri))
    theirs = lance.dataset(uri)
    assert theirs.count_rows() == 10 and len(theirs.get_fragments()) >= 2  # one or more per batch
    rows = sorted(theirs.to_table().to_pylist(), key=lambda r: r["id"])
    assert rows[0] == {"id": 0, "name": None} and rows[5] == {"id": 5, "name": "n5"}
    assert theirs.schema.field("id").type == pa.int64()
    version = theirs.version

    # Append: the writer sees the dataset and writes with its schema; a transform first.
    more = ray.data.range(6).map(lambda r: {"id": 100 + r["id"], "name": "x"})
    more.map_batches(
        lr.LanceFragmentWriter(uri, transform=lambda t: t.filter(pc.greater(t["id"], 101))),
        batch_size=3,
    ).write_datasink(lr.LanceFragmentCommitter(uri, mode="append"))
    assert lance.dataset(uri).count_rows() == 14 and lance.dataset(uri).version == version + 1

    # Stable row ids on a new dataset; nothing staged → nothing committed.
    stable = str(tmp_path / "stable.lance")
    ds.map_batches(lr.LanceFragmentWriter(stable, schema=schema, enable_stable_row_ids=True), batch_size=10) \
        .write_datasink(lr.LanceFragmentCommitter(stable))
    assert lance.dataset(stable).has_stable_row_ids
    empty = str(tmp_path / "empty.lance")
    ray.data.range(4).filter(lambda r: r["id"] > 10).map_batches(lr.LanceFragmentWriter(empty)) \
        .write_datasink(lr.LanceFragmentCommitter(empty))
    assert not (tmp_path / "empty.lance" / "_versions").exists()

    # Bad input: create over an existing dataset, an unknown mode, a foreign block.
    with pytest.raises(Exception, match="already exists"):
        ds.map_batches(lr.LanceFragmentWriter(uri, mode="overwrite"), batch_size=10) \
            .write_datasink(lr.LanceFragmentCommitter(uri, mode="create"))
    with pytest.raises(ValueError, match="mode"):
        lr.LanceFragmentCommitter(uri, mode="upsert")
    with pytest.raises(Exception, match="LanceFragmentWriter"):
        ds.write_datasink(lr.LanceFragmentCommitter(uri, mode="append"))
    with pytest.raises(NotImplementedError, match="max_bytes_per_file"):
        lr.LanceFragmentWriter(uri, max_bytes_per_file=1 << 20)
    assert lance.dataset(uri).count_rows() == 14

    # write_lance(stream=True) runs the same writer and committer.
    streamed = str(tmp_path / "streamed.lance")
    lr.write_lance(ds, streamed, schema=schema, stream=True, batch_size=4, concurrency=1)
    assert sorted(lance.dataset(streamed).to_table().column("id").to_pylist()) == list(range(10))
    lr.write_lance(more, streamed, mode="append", stream=True)
    assert lance.dataset(streamed).count_rows() == 16
    with pytest.raises(FileExistsError, match="already exists"):
        lr.write_lance(ds, streamed, stream=True)
    with pytest.raises(NotImplementedError, match="concurrency"):
        lr.write_lance(ds, streamed, mode="append", concurrency=2)
    assert lance.dataset(streamed).count_rows() == 16
