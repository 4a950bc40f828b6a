"""The typed bindings: every API call goes straight to the engine's typed
functions (no command line), search results keep the dataset's Arrow types
and equal brute force, query vectors and pre-trained artifacts come in as
numpy or Arrow arrays, and bad input is refused before any work."""

import datetime
import inspect

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lanceflow
from lanceflow import _native, api

lance = pytest.importorskip("lance")

ROWS, DIM = 300, 8


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    """A dataset with columns of several Arrow types and a vector column."""
    tmp = tmp_path_factory.mktemp("typed")
    rng = np.random.default_rng(11)
    data = rng.normal(size=(ROWS, DIM)).astype(np.float32)
    start = datetime.datetime(2026, 1, 1)
    table = pa.table(
        {
            "id": pa.array(range(ROWS), pa.int64()),
            "small": pa.array([i % 7 for i in range(ROWS)], pa.int32()),
            "weight": pa.array([i / 4 for i in range(ROWS)], pa.float64()),
            "seen": pa.array(
                [start + datetime.timedelta(hours=i) for i in range(ROWS)], pa.timestamp("us")
            ),
            "text": [f"note {i} on {'rivers' if i % 2 else 'hills'}" for i in range(ROWS)],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), DIM),
        }
    )
    src = str(tmp / "typed.parquet")
    pq.write_table(table, src)
    uri = str(tmp / "typed.lance")
    lanceflow.ingest(src, uri, max_rows_per_file=100)
    return uri, data, table


def brute_force(data, query, k):
    d = ((data - query) ** 2).sum(axis=1)
    order = np.argsort(d, kind="stable")[:k]
    return order.tolist(), d[order]


def test_no_call_builds_a_command_line(typed, tmp_path, monkeypatch):
    uri, data, _ = typed

    def refuse(*args, **kwargs):
        raise AssertionError(f"the Python API built a command line: {args!r}")

    monkeypatch.setattr(_native, "run_cli", refuse)
    assert "run_cli" not in inspect.getsource(api)
    copy = str(tmp_path / "copy.lance")
    src = str(tmp_path / "more.parquet")
    pq.write_table(lance.dataset(uri).to_table(columns=["id", "text", "vector"]), src)
    report = lanceflow.ingest(src, copy, max_rows_per_file=50)
    assert report["rows_written"] == ROWS and isinstance(report, dict)
    assert lanceflow.create_scalar_index(copy, "id", "BTREE")["name"] == "id_idx"
    assert lanceflow.create_scalar_index(copy, "text", "INVERTED")["name"] == "text_idx"
    built = lanceflow.create_index(copy, "vector", "IVF_FLAT", num_partitions=4)
    assert built["name"] == "vector_idx"
    lanceflow.ingest(src, copy, mode="append", max_rows_per_file=50)
    assert lanceflow.optimize_indices(copy)["indexes"]
    assert lanceflow.compact_files(copy, target_rows_per_fragment=1000)["fragments_removed"] > 0
    info = lanceflow.info(copy)
    assert info["rows"] == 2 * ROWS and {i["name"] for i in info["indices"]} >= {"id_idx", "vector_idx"}
    assert len(lanceflow.versions(copy)) == lance.dataset(copy).version
    assert isinstance(lanceflow.cleanup(copy, "0s", dry_run=True), dict)
    hits = lanceflow.vector_search(copy, data[0], k=3, nprobes=4, columns=["id"])
    assert hits.column("id").to_pylist()[:2] == [0, 0]  # the row and its appended copy
    assert lanceflow.search_text(copy, "rivers", k=5, columns=["id"]).num_rows == 5


def test_search_results_keep_the_datasets_types_and_equal_brute_force(typed):
    uri, data, table = typed
    queries = data[[3, 150, 299]] + np.float32(0.01)
    for distributed in (False, True):
        hits = lanceflow.vector_search(uri, queries, k=5, distributed=distributed, workers=2)
        types = {f.name: f.type for f in hits.schema}
        for name in ("id", "small", "weight", "seen", "text"):
            assert types[name] == table.schema.field(name).type, (name, types[name])
        assert "vector" not in types  # the searched column is left out by default
        assert types["_distance"] == pa.float32() and types["query"] == pa.uint32()
        meta = hits.schema.metadata
        assert int(meta[b"lanceflow.version"]) == lance.dataset(uri).version
        assert float(meta[b"lanceflow.seconds"]) > 0
        for q, query in enumerate(queries):
            mine = hits.filter(pa.compute.equal(hits.column("query"), q))
            ids, distances = brute_force(data, query, 5)
            assert mine.column("id").to_pylist() == ids
            np.testing.assert_allclose(mine.column("_distance").to_numpy(), distances, rtol=1e-4)
            row = table.slice(ids[0], 1)
            assert mine.column("seen")[0] == row.column("seen")[0]
            assert mine.column("small")[0] == row.column("small")[0]


def test_query_vectors_in_any_array_form(typed):
    uri, data, _ = typed
    q = data[42]
    expected = lanceflow.vector_search(uri, q, k=4, columns=["id"]).column("id").to_pylist()
    assert expected == brute_force(data, q, 4)[0]
    forms = [
        q.tolist(),
        [q.tolist()],
        q.astype(np.float64),
        q.reshape(1, -1),
        pa.FixedSizeListArray.from_arrays(pa.array(q), DIM),
    ]
    for form in forms:
        got = lanceflow.vector_search(uri, form, k=4, columns=["id"])
        assert got.column("id").to_pylist() == expected, type(form)
    with pytest.raises(ValueError, match="finite"):
        lanceflow.vector_search(uri, [float("nan")] * DIM)
    with pytest.raises(ValueError, match="dimension"):
        lanceflow.vector_search(uri, [1.0, 2.0])
    with pytest.raises(ValueError, match="query"):
        lanceflow.vector_search(uri, k=3)


def test_centroids_and_codebook_as_arrays(typed, tmp_path):
    uri, data, _ = typed
    copy = str(tmp_path / "c.lance")
    src = str(tmp_path / "c.parquet")
    pq.write_table(lance.dataset(uri).to_table(columns=["id", "vector"]), src)
    lanceflow.ingest(src, copy)
    centroids = data[:6].copy()
    for given in (centroids, pa.FixedSizeListArray.from_arrays(pa.array(centroids.ravel()), DIM)):
        report = lanceflow.create_index(copy, "vector", "IVF_FLAT", centroids=given)
        assert report["partitions"] == 6, report
    ivf = lance.dataset(copy).stats.index_stats("vector_idx")["indices"][0]
    np.testing.assert_allclose(np.array(ivf["centroids"], dtype=np.float32), centroids, atol=1e-6)
    hits = lanceflow.vector_search(copy, data[7], k=1, nprobes=6, columns=["id"])
    assert hits.column("id").to_pylist() == [7]
    with pytest.raises(ValueError, match="dimension"):
        lanceflow.create_index(copy, "vector", "IVF_FLAT", centroids=np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="centroids"):
        lanceflow.create_index(copy, "vector", "IVF_FLAT", centroids=np.zeros(8, np.float32))
    before = lance.dataset(copy).version
    with pytest.raises(ValueError):
        lanceflow.create_index(copy, "vector", "NOPE")
    with pytest.raises(ValueError):
        lanceflow.ingest(src, copy, mode="sideways")
    with pytest.raises(ValueError, match="workers"):
        lanceflow.info(copy, workers=0)
    assert lance.dataset(copy).version == before


def test_write_lance_streams_arrow_in_without_staging(tmp_path, monkeypatch):
    """A pyarrow Table, a RecordBatchReader and a pandas frame go to the
    engine through the Arrow C data interface (no Parquet on the way), one
    version each, checked through pylance."""
    import tempfile

    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: pytest.fail("staged files"))
    uri = str(tmp_path / "w.lance")
    first = pa.table({"id": pa.array(range(250), pa.int64()), "name": [f"n{i}" for i in range(250)]})
    report = lanceflow.write_lance(first, uri, max_rows_per_file=100)
    assert (report["rows_written"], report["fragments_written"]) == (250, 3)
    ds = lance.dataset(uri)
    assert ds.version == 1 and ds.to_table() == first
    # A reader whose batches carry int32 ids: cast to the dataset's int64.
    batches = [pa.record_batch({"id": pa.array(range(250 + 10 * i, 260 + 10 * i), pa.int32())}) for i in range(3)]
    reader = pa.RecordBatchReader.from_batches(batches[0].schema, batches)
    lanceflow.write_lance(reader, uri, mode="append", idempotency_key="day-1")
    again = pa.RecordBatchReader.from_batches(batches[0].schema, batches)
    assert lanceflow.write_lance(again, uri, mode="append", idempotency_key="day-1")["already_applied"]
    ds = lance.dataset(uri)
    assert ds.version == 2 and ds.count_rows() == 280
    assert ds.schema.field("id").type == pa.int64()
    assert sorted(ds.to_table().column("id").to_pylist()) == list(range(280))
    assert ds.to_table(filter="id >= 250").column("name").null_count == 30
    pd = pytest.importorskip("pandas")
    lanceflow.write_lance(pd.DataFrame({"id": [1000], "name": ["p"]}), uri, mode="append")
    assert lance.dataset(uri).count_rows() == 281
    # Refused, and nothing written: an unknown column, an empty table, a bad mode.
    with pytest.raises(ValueError, match="extra"):
        lanceflow.write_lance(pa.table({"id": [1], "extra": [2]}), uri, mode="append")
    with pytest.raises(ValueError, match="no rows"):
        lanceflow.write_lance(first.slice(0, 0), uri, mode="append")
    with pytest.raises(ValueError):
        lanceflow.write_lance(first, uri, mode="sideways")
    with pytest.raises(FileExistsError):
        lanceflow.write_lance(first, uri)
    with pytest.raises(ValueError, match="write_lance takes"):
        lanceflow.write_lance(object(), uri, mode="append")
    assert lance.dataset(uri).version == 3


def test_fast_search_leaves_out_unindexed_rows_as_lance_does(cluster, typed, tmp_path):
    uri, data, _ = typed
    copy = str(tmp_path / "f.lance")
    src = str(tmp_path / "f.parquet")
    pq.write_table(lance.dataset(uri).to_table(columns=["id", "vector"]), src)
    lanceflow.ingest(src, copy)
    lanceflow.create_index(copy, "vector", "IVF_FLAT", num_partitions=4)
    q = data[10] + np.float32(0.01)  # the new rows equal it, row 10 is near it
    extra = pa.table(
        {
            "id": pa.array(range(1000, 1005), pa.int64()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.tile(q, 5)), DIM),
        }
    )
    lanceflow.write_lance(extra, copy, mode="append")
    theirs = lance.dataset(copy).to_table(
        nearest={"column": "vector", "q": q, "k": 5, "nprobes": 4}, fast_search=True, columns=["id"]
    )
    assert 10 in theirs.column("id").to_pylist()
    for distributed in (False, True):
        everything = lanceflow.vector_search(copy, q, k=5, nprobes=4, columns=["id"], distributed=distributed)
        assert sorted(everything.column("id").to_pylist()) == list(range(1000, 1005))
        fast = lanceflow.vector_search(
            copy, q, k=5, nprobes=4, columns=["id"], distributed=distributed, fast_search=True
        )
        assert fast.column("id").to_pylist() == theirs.column("id").to_pylist()
    import lanceflow.ray as lr

    hits = lr.vector_search(
        copy, nearest={"column": "vector", "q": q, "k": 5, "nprobes": 4}, include_unindexed=False, num_workers=1
    )
    assert hits.column("id").to_pylist() == theirs.column("id").to_pylist()


def test_probe_bounds_distance_range_and_plans_as_lance_does(cluster, typed, tmp_path):
    """minimum/maximum_nprobes and distance_range answer as pylance's
    ``nearest`` options on the same dataset (in-process, distributed and
    through lanceflow.ray); analyze_plan returns lance's plans with metrics."""
    uri, data, _ = typed
    copy = str(tmp_path / "o.lance")
    src = str(tmp_path / "o.parquet")
    pq.write_table(lance.dataset(uri).to_table(columns=["id", "vector"]), src)
    lanceflow.ingest(src, copy, max_rows_per_file=100)
    lanceflow.create_index(copy, "vector", "IVF_FLAT", num_partitions=6)
    rng = np.random.default_rng(5)
    new = rng.normal(size=(20, DIM)).astype(np.float32)
    lanceflow.write_lance(
        pa.table(
            {
                "id": pa.array(range(1000, 1020), pa.int64()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(new.ravel()), DIM),
            }
        ),
        copy,
        mode="append",
    )
    everything = np.vstack([data, new])
    ids = np.array(list(range(ROWS)) + list(range(1000, 1020)))
    q = data[10] + np.float32(0.05)
    exact = ((everything - q) ** 2).sum(axis=1)
    order = np.argsort(exact)
    # Bounds midway between neighbours: no row sits on a bound, where the
    # last bit of float32 rounding would decide.
    lower = float(exact[order[2]] + exact[order[3]]) / 2
    upper = float(exact[order[12]] + exact[order[13]]) / 2
    import lanceflow.ray as lr

    cases = [
        dict(minimum_nprobes=1, maximum_nprobes=1),
        dict(minimum_nprobes=2),
        dict(nprobes=6, distance_range=(lower, upper)),
        dict(minimum_nprobes=6, distance_range=(None, upper)),
    ]
    for options in cases:
        theirs = lance.dataset(copy).to_table(
            nearest={"column": "vector", "q": q, "k": 10, **options}, columns=["id"]
        )
        expected = theirs.column("id").to_pylist()
        for distributed in (False, True):
            ours = lanceflow.vector_search(
                copy, q, k=10, columns=["id"], distributed=distributed, **options
            )
            assert ours.column("id").to_pylist() == expected, (options, distributed)
        hits = lr.vector_search(
            copy, nearest={"column": "vector", "q": q, "k": 10, **options}, num_workers=2
        )
        assert hits.column("id").to_pylist() == expected, options
        if options.get("nprobes") == 6:
            # Every partition probed: exactly brute force within the range.
            inside = [int(ids[i]) for i in order if lower <= exact[i] < upper][:10]
            assert expected == inside
            assert all(lower <= d < upper for d in ours.column("_distance").to_pylist())
    # lance-ray's oversample_factor: the answer is the single-process one already.
    plain = lr.vector_search(copy, nearest={"column": "vector", "q": q, "k": 5}, num_workers=2)
    more = lr.vector_search(
        copy, nearest={"column": "vector", "q": q, "k": 5}, num_workers=2, oversample_factor=3
    )
    assert more.column("id").to_pylist() == plain.column("id").to_pylist()

    text = lanceflow.vector_search(copy, q, k=5, distributed=False, analyze_plan=True)
    assert text.startswith("== vector search plan 0 (in-process) ==") and "metrics=" in text
    text = lr.vector_search(
        copy, nearest={"column": "vector", "q": q, "k": 5}, analyze_plan=True, num_workers=2
    )
    assert "(index segments)" in text and "(flat scan)" in text and "metrics=" in text

    version = lance.dataset(copy).version
    with pytest.raises(ValueError, match="distance range is empty"):
        lanceflow.vector_search(copy, q, k=5, distance_range=(1.0, 0.5))
    with pytest.raises(ValueError, match="probe bounds are crossed"):
        lanceflow.vector_search(copy, q, k=5, minimum_nprobes=5, maximum_nprobes=2)
    with pytest.raises(ValueError, match="distance_range must be a pair"):
        lanceflow.vector_search(copy, q, k=5, distance_range=0.5)
    with pytest.raises(ValueError, match="oversample_factor"):
        lr.vector_search(copy, nearest={"column": "vector", "q": q, "k": 5}, oversample_factor=0.5)
    assert lance.dataset(copy).version == version
