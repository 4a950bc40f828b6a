"""Lance namespaces: tables named by ``namespace_impl`` / ``namespace_properties``
/ ``table_id`` in the typed API and ``lanceflow.ray``, checked through
pylance's own namespace client reading the same tables.

Which lance-ray tests they cover (written from their intent):
- test_basic_read_write.py ``TestNamespaceReadWrite`` → ``test_dir_namespace_write_read_index_search``
- test_distributed_indexing.py ``TestNamespaceIndexing`` (FTS, BTREE, IVF_PQ
  by namespace; uri and namespace exclusive; one of them required) → the same
  test and ``test_namespace_bad_input``
- test_distributed_compaction.py ``test_compaction_with_directory_namespace``
  and ``TestCompactDatabase`` → ``test_compact_database``
- test_add_columns_from.py namespace resolution (namespace options win) →
  ``test_rest_namespace_through_pylances_server``
"""

import numpy as np
import pyarrow as pa
import pytest

import lanceflow
import lanceflow.ray as lr

lance = pytest.importorskip("lance")
lance_namespace = pytest.importorskip("lance_namespace")


def _table(rows=300, dim=8, seed=5):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, dim)).astype(np.float32)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), dim)
    text = [f"note {i} about {'rivers' if i % 3 else 'mountains'}" for i in range(rows)]
    return pa.table({"id": pa.array(range(rows), pa.int64()), "text": text, "vector": vec}), data


def _location(impl, props, table_id):
    """Where pylance's own namespace client says the table is."""
    ns = lance_namespace.connect(impl, props)
    return ns.describe_table(lance_namespace.DescribeTableRequest(id=table_id)).location


def test_dir_namespace_write_read_index_search(cluster, tmp_path):
    import ray

    props = {"root": str(tmp_path / "kb")}
    named = dict(namespace_impl="dir", namespace_properties=props, table_id=["docs"])
    table, data = _table()
    lr.write_lance(ray.data.from_arrow(table), min_rows_per_file=50, max_rows_per_file=100, **named)
    location = _location("dir", props, ["docs"])
    assert location.rstrip("/").endswith("docs.lance")
    theirs = lance.dataset(location)
    assert theirs.count_rows() == 300 and len(theirs.get_fragments()) >= 3
    ns = lance_namespace.connect("dir", props)
    assert "docs" in ns.list_tables(lance_namespace.ListTablesRequest(id=[])).tables

    got = lr.read_lance(columns=["id"], filter="id < 10", **named).take_all()
    assert sorted(r["id"] for r in got) == list(range(10))

    # Indexes by namespace, as lance-ray's namespace indexing tests build them.
    lr.create_scalar_index(column="id", index_type="BTREE", num_workers=2, **named)
    lr.create_scalar_index(column="text", index_type="INVERTED", num_workers=2, **named)
    lr.create_index(column="vector", index_type="IVF_PQ", num_partitions=2, num_sub_vectors=2,
                    num_workers=2, **named)
    names = {i["name"] for i in lance.dataset(location).list_indices()}
    assert {"id_idx", "text_idx", "vector_idx"} <= names

    hits = lr.vector_search(nearest={"column": "vector", "q": data[7].tolist(), "k": 5,
                                     "nprobes": 2, "refine_factor": 50}, **named)
    want = np.argsort(((data - data[7]) ** 2).sum(axis=1))[:5].tolist()
    assert hits.column("id").to_pylist() == want

    # The typed API takes the same names; an append lands in the same table.
    lanceflow.write_lance(table.slice(0, 20), mode="append", **named)
    assert lance.dataset(location).count_rows() == 320
    assert lanceflow.info(**named)["rows"] == 320
    # A table pylance wrote in the namespace's directory is found by id.
    lance.write_dataset(table.slice(0, 7), str(tmp_path / "kb" / "theirs.lance"))
    assert lanceflow.info(namespace_impl="dir", namespace_properties=props, table_id="theirs")["rows"] == 7


def test_compact_database(cluster, tmp_path):
    import ray

    props = {"root": str(tmp_path / "db")}
    table, _ = _table(rows=40)
    for name in ("table_a", "table_b"):
        named = dict(namespace_impl="dir", namespace_properties=props, table_id=[name])
        lr.write_lance(ray.data.from_arrow(table.slice(0, 20)), min_rows_per_file=10,
                       max_rows_per_file=10, **named)
        lr.write_lance(ray.data.from_arrow(table.slice(20, 20)), mode="append", min_rows_per_file=10,
                       max_rows_per_file=10, **named)
        assert len(lance.dataset(_location("dir", props, [name])).get_fragments()) == 4
    # One table by namespace first (lance-ray's compaction-with-namespace test).
    metrics = lr.compact_files(namespace_impl="dir", namespace_properties=props, table_id=["table_a"],
                               num_workers=2)
    assert metrics is not None and metrics.fragments_removed == 4 and metrics.fragments_added == 1
    with pytest.raises(ValueError, match="database.*non-empty"):
        lr.compact_database(database=[], namespace_impl="dir", namespace_properties=props)
    with pytest.raises(ValueError, match="namespace_impl.*required"):
        lr.compact_database(database=["x"], namespace_impl="", namespace_properties=props)
    # The whole namespace through the engine (root level: the typed call).
    report = lanceflow._native.compact_database(
        lanceflow.api._session(executor="local"), "dir", props, [], None, None, None, None
    )
    results = {tuple(t["table_id"]): t["report"] for t in report["tables"]}
    assert set(results) == {("table_a",), ("table_b",)}
    assert results[("table_a",)]["compacted"] is False, "already compacted above"
    assert results[("table_b",)]["compacted"] is True
    for name in ("table_a", "table_b"):
        ds = lance.dataset(_location("dir", props, [name]))
        assert len(ds.get_fragments()) == 1 and ds.count_rows() == 40
        assert sorted(ds.to_table(columns=["id"]).column("id").to_pylist()) == list(range(40))


def test_compact_database_child_namespace(cluster, tmp_path):
    props = {"root": str(tmp_path / "nested")}
    ns = lance_namespace.connect("dir", props)
    ns.create_namespace(lance_namespace.CreateNamespaceRequest(id=["team"]))
    table, _ = _table(rows=30)
    for name in ("a", "b"):
        named = dict(namespace_impl="dir", namespace_properties=props, table_id=["team", name])
        lanceflow.write_lance(table.slice(0, 15), max_rows_per_file=5, **named)
        lanceflow.write_lance(table.slice(15, 15), mode="append", max_rows_per_file=5, **named)
    results = lr.compact_database(database=["team"], namespace_impl="dir", namespace_properties=props,
                                  num_workers=2)
    assert sorted(r["table_id"] for r in results) == [["team", "a"], ["team", "b"]]
    for r in results:
        assert r["metrics"].fragments_removed == 6 and r["metrics"].fragments_added == 1
        ds = lance.dataset(_location("dir", props, r["table_id"]))
        assert ds.count_rows() == 30 and len(ds.get_fragments()) == 1
    again = lr.compact_database(database=["team"], namespace_impl="dir", namespace_properties=props)
    assert sorted((r["table_id"], r["metrics"]) for r in again) == [(["team", "a"], None), (["team", "b"], None)]


def test_rest_namespace_through_pylances_server(cluster, tmp_path):
    from lance.namespace import RestAdapter

    root = str(tmp_path / "served")
    adapter = RestAdapter("dir", {"root": root}, host="127.0.0.1", port=0)
    adapter.start()
    try:
        props = {"uri": f"http://127.0.0.1:{adapter.port}"}
        named = dict(namespace_impl="rest", namespace_properties=props, table_id=["docs"])
        table, data = _table(rows=120)
        lanceflow.write_lance(table, max_rows_per_file=40, **named)
        location = _location("dir", {"root": root}, ["docs"])
        assert lance.dataset(location).count_rows() == 120
        assert lanceflow.info(**named)["fragments"] == 3
        lr.create_index(column="vector", index_type="IVF_FLAT", num_partitions=2, num_workers=2, **named)
        hits = lr.vector_search(nearest={"column": "vector", "q": data[3].tolist(), "k": 3,
                                         "nprobes": 2}, **named)
        assert hits.column("id").to_pylist() == np.argsort(((data - data[3]) ** 2).sum(axis=1))[:3].tolist()
        with pytest.raises(lanceflow.NotFoundError, match="no table 'nope'"):
            lanceflow.info(namespace_impl="rest", namespace_properties=props, table_id=["nope"])
    finally:
        adapter.stop()
    # The server is gone: a clear storage error, not a hang.
    with pytest.raises(lanceflow.LanceflowError):
        lanceflow.info(**named)


def test_namespace_bad_input(cluster, tmp_path):
    props = {"root": str(tmp_path / "bad")}
    table, _ = _table(rows=10)
    lanceflow.write_lance(table, namespace_impl="dir", namespace_properties=props, table_id=["t"])
    location = _location("dir", props, ["t"])
    version = lance.dataset(location).version
    with pytest.raises(lanceflow.NotFoundError, match="no table 'missing'"):
        lr.read_lance(namespace_impl="dir", namespace_properties=props, table_id=["missing"])
    with pytest.raises(ValueError, match="Cannot provide both"):
        lr.create_index(location, column="vector", index_type="IVF_FLAT", namespace_impl="dir",
                        namespace_properties=props, table_id=["t"])
    with pytest.raises(ValueError, match="Must provide either"):
        lr.create_scalar_index(column="id", index_type="BTREE", namespace_impl="dir",
                               namespace_properties=props)
    with pytest.raises(ValueError, match="unknown namespace implementation 'glue'"):
        lanceflow.info(namespace_impl="glue", namespace_properties=props, table_id=["t"])
    with pytest.raises(ValueError, match="needs the property 'root'"):
        lanceflow.info(namespace_impl="dir", namespace_properties={}, table_id=["t"])
    with pytest.raises(ValueError, match="table_id must be a list"):
        lanceflow.info(namespace_impl="dir", namespace_properties=props, table_id=[1])
    with pytest.raises(lanceflow.AlreadyExistsError):
        lanceflow.write_lance(table, namespace_impl="dir", namespace_properties=props, table_id=["t"])
    assert lance.dataset(location).version == version
