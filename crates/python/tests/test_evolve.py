"""Data evolution: ``lanceflow.add_columns`` / ``merge_columns`` in process,
and lance-ray's ``add_columns``, ``add_columns_from``, ``merge_columns_from``
on the Ray cluster (transforms run in lanceflow's actors); every value
checked through pylance against the same computation in Python, and bad
input leaving the dataset at its version.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import lanceflow
import lanceflow.ray as lr

lance = pytest.importorskip("lance")


def make(uri, rows=200, per_file=50, deleted="id % 9 = 0"):
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "text": [f"text {i} " + "x" * (i % 11) for i in range(rows)],
            "score": [i * 0.25 for i in range(rows)],
        }
    )
    lanceflow.write_lance(table, uri, max_rows_per_file=per_file)
    if deleted:
        lance.dataset(uri).delete(deleted)
    return lance.dataset(uri)


def rows_of(uri, *columns):
    return lance.dataset(uri).to_table(columns=list(columns)).to_pylist()


def fails_later(batch):
    """Raises only on rows past the sample the planner learns the schema from."""
    if pc.max(batch["id"]).as_py() >= 150:
        raise ZeroDivisionError("no rows past 150")
    return pa.RecordBatch.from_pydict({"ok": batch["id"]})


def test_add_columns_in_process(tmp_path):
    uri = str(tmp_path / "e.lance")
    ds = make(uri)
    live = ds.count_rows()

    report = lanceflow.add_columns(uri, {"n_chars": "length(text)", "double": "score * 2"}, workers=2)
    assert report["rows"] == live and report["fragments"] == 4 and report["tasks"] == 2
    for r in rows_of(uri, "id", "text", "score", "n_chars", "double"):
        assert r["id"] % 9 != 0
        assert r["n_chars"] == len(r["text"]) and r["double"] == r["score"] * 2

    # A callable over RecordBatches (read_columns only), and one returning pandas.
    upper = lambda b: pa.RecordBatch.from_pydict({"upper": pc.utf8_upper(b["text"])})  # noqa: E731
    lanceflow.add_columns(uri, upper, read_columns=["text"], batch_size=7)
    plus = lambda b: b.to_pandas()[["id"]].rename(columns={"id": "id_plus"}) + 1  # noqa: E731
    lanceflow.add_columns(uri, plus, read_columns=["id"])
    dict_of_lists = lambda d: {"words": [len(t.split()) for t in d["text"]]}  # noqa: E731
    lanceflow.add_columns(uri, dict_of_lists, read_columns=["text"], as_dict=True)
    for r in rows_of(uri, "id", "text", "upper", "id_plus", "words"):
        assert r["upper"] == r["text"].upper() and r["id_plus"] == r["id"] + 1
        assert r["words"] == len(r["text"].split())
    schema = lance.dataset(uri).schema
    assert schema.names[-5:] == ["n_chars", "double", "upper", "id_plus", "words"]

    # merge_columns: rows keyed by _rowaddr, shuffled.
    keyed = lance.dataset(uri).to_table(columns=["id"], with_row_address=True)
    keyed = keyed.append_column("square", pc.multiply(keyed["id"], keyed["id"])).drop_columns(["id"])
    keyed = keyed.take(list(reversed(range(keyed.num_rows))))
    lanceflow.merge_columns(uri, keyed)
    assert all(r["square"] == r["id"] ** 2 for r in rows_of(uri, "id", "square"))


def test_add_columns_bad_input_commits_nothing(tmp_path):
    uri = str(tmp_path / "bad.lance")
    version = make(uri).version

    def raises(batch):
        return 1 / 0

    cases = [
        (lambda: lanceflow.add_columns(uri, raises), lanceflow.InvalidInputError, "ZeroDivisionError"),
        (lambda: lanceflow.add_columns(uri, lambda b: b.slice(0, 1).select(["id"]).rename_columns(["a"])),
         lanceflow.InvalidInputError, "one row per"),
        (lambda: lanceflow.add_columns(uri, lambda b: [1, 2]), lanceflow.InvalidInputError, "must return a pyarrow"),
        (lambda: lanceflow.add_columns(uri, lambda b: b.select(["id"])), lanceflow.AlreadyExistsError, "already exists"),
        (lambda: lanceflow.add_columns(uri, {"x": "nope("}), lanceflow.InvalidInputError, "not valid SQL"),
        (lambda: lanceflow.add_columns(uri, {"x": 3}), lanceflow.InvalidInputError, "SQL expressions"),
        (lambda: lanceflow.add_columns(uri, 42), lanceflow.InvalidInputError, "callable"),
        (lambda: lanceflow.add_columns(uri, {"x": "id"}, batch_size=0), lanceflow.InvalidInputError, "batch_size"),
        (lambda: lanceflow.add_columns(uri, fails_later, read_columns=["id"], workers=2),
         lanceflow.LanceflowError, "no rows past 150"),
        (lambda: lanceflow.add_columns(uri, lambda b: b, read_columns=["nosuch"]), lanceflow.NotFoundError, "nosuch"),
        (lambda: lanceflow.merge_columns(uri, pa.table({"x": [1]})), lanceflow.InvalidInputError, "_rowaddr"),
        (lambda: lanceflow.merge_columns(uri, pa.table({"_rowaddr": pa.array([1], pa.uint64()), "x": [1]})),
         lanceflow.InvalidInputError, "rows but"),
    ]
    for call, error, says in cases:
        with pytest.raises(error, match=says):
            call()
        assert lance.dataset(uri).version == version, says


def test_lance_ray_data_evolution(cluster, tmp_path):
    import ray

    uri = str(tmp_path / "ray.lance")
    items = [{"id": i, "name": f"name-{i}" + "z" * (i % 4), "score": float(i)} for i in range(30)]
    lr.write_lance(ray.data.from_items(items), uri, min_rows_per_file=7, max_rows_per_file=7)
    assert len(lance.dataset(uri).get_fragments()) >= 3
    version = lance.dataset(uri).version

    # A RecordBatch callable (through pandas) in the actors, and SQL.
    def double(batch):
        frame = batch.to_pandas()
        return pa.RecordBatch.from_pandas(frame.assign(doubled=frame["score"] * 2)[["doubled"]])

    assert lr.add_columns(uri, transform=double, read_columns=["score"], concurrency=2) is None
    lr.add_columns(uri, transform={"id2": "id * 2"})
    # add_columns_from: dict of lists in, new columns out.
    lr.add_columns_from(uri, transform=lambda d: {"name_len": [len(n) for n in d["name"]]},
                        read_columns=["name"], batch_size=8)
    rows = rows_of(uri, "id", "name", "score", "doubled", "id2", "name_len")
    assert [r["id"] for r in rows] == list(range(30))
    for r in rows:
        assert r["doubled"] == r["score"] * 2 and r["id2"] == r["id"] * 2
        assert r["name_len"] == len(r["name"])
    assert lance.dataset(uri).version == version + 3

    # merge_columns_from: shuffled rows carrying _rowaddr.
    ds = lr.read_lance(uri, columns=["id"], with_metadata=True)
    ds = ds.map_batches(lambda t: t.append_column("tenfold", pc.multiply(t["id"], 10)), batch_format="pyarrow")
    lr.merge_columns_from(uri, ds.drop_columns(["id"]).random_shuffle())
    assert all(r["tenfold"] == r["id"] * 10 for r in rows_of(uri, "id", "tenfold"))

    # Errors: nothing committed.
    version = lance.dataset(uri).version
    plain = lr.read_lance(uri, columns=["id"])
    with pytest.raises(ValueError, match="_rowaddr"):
        lr.merge_columns_from(uri, plain)
    meta = lr.read_lance(uri, columns=["id"], with_metadata=True)
    with pytest.raises(ValueError, match="no new columns"):
        lr.merge_columns_from(uri, meta)
    first = meta.filter(lambda r: r["_fragid"] == 0).map_batches(
        lambda t: t.append_column("first", pc.add(t["id"], 1)), batch_format="pyarrow")
    with pytest.raises(ValueError, match="do not cover every fragment"):
        lr.merge_columns_from(uri, first.drop_columns(["id"]))
    with pytest.raises(lanceflow.LanceflowError, match="divide by zero"):
        lr.add_columns(uri, transform=lambda b: pa.RecordBatch.from_pydict({"bad": pc.divide(b["id"], 0)}))
    with pytest.raises(ValueError, match="filter"):
        lr.add_columns(uri, transform={"x": "id"}, filter="id > 3")
    assert lance.dataset(uri).version == version

    # Partial coverage allowed: the other fragments read null.
    lr.merge_columns_from(uri, first.drop_columns(["id"]), require_full_coverage=False)
    frag0 = {r["id"] for r in lance.dataset(uri).get_fragments()[0].to_table(columns=["id"]).to_pylist()}
    for r in rows_of(uri, "id", "first"):
        assert r["first"] == (r["id"] + 1 if r["id"] in frag0 else None)


def test_bloomfilter_filters_like_a_scan(cluster, tmp_path):
    uri = str(tmp_path / "bloom.lance")
    make(uri, rows=600, per_file=100, deleted=None)
    ds = lr.create_scalar_index(uri, column="text", index_type="BLOOMFILTER", num_workers=2)
    described = {i.name: i for i in ds.describe_indices()}
    assert "BloomFilter" in described["text_idx"].type_url, described
    assert described["text_idx"].num_rows_indexed == 600
    for flt in ["text = 'text 17 xxxxxx'", "text IN ('text 3 xxx', 'text 500 xxxxx', 'none')", "text = 'none'"]:
        indexed = ds.to_table(columns=["id"], filter=flt).column("id").to_pylist()
        scanned = ds.to_table(columns=["id"], filter=flt, use_scalar_index=False).column("id").to_pylist()
        assert sorted(indexed) == sorted(scanned), flt
        assert "ScalarIndexQuery" in ds.scanner(columns=["id"], filter=flt).explain_plan() or flt.endswith("'none'")
    assert sorted(ds.to_table(filter="text = 'text 17 xxxxxx'").column("id").to_pylist()) == [17]


def test_rtree_filters_geometry_like_a_scan(cluster, tmp_path):
    """RTREE on a GeoArrow point column: spatial filters equal an unindexed scan."""
    uri = str(tmp_path / "rtree.lance")
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 100, size=(500, 2))
    point = pa.struct([("x", pa.float64()), ("y", pa.float64())])
    field = pa.field("geom", point, metadata={"ARROW:extension:name": "geoarrow.point"})
    geom = pa.StructArray.from_arrays([pa.array(xy[:, 0]), pa.array(xy[:, 1])], fields=list(point))
    table = pa.Table.from_arrays([pa.array(range(500), pa.int64()), geom],
                                 schema=pa.schema([("id", pa.int64()), field]))
    lance.write_dataset(table, uri, max_rows_per_file=100)
    ds = lr.create_scalar_index(uri, column="geom", index_type="RTREE", num_workers=2)
    described = {i.name: i for i in ds.describe_indices()}
    assert "RTree" in described["geom_idx"].type_url, described
    box = "POLYGON ((10 10, 40 10, 40 35, 10 35, 10 10))"
    flt = f"st_intersects(geom, st_geomfromtext('{box}'))"
    indexed = sorted(ds.to_table(columns=["id"], filter=flt).column("id").to_pylist())
    scanned = sorted(ds.to_table(columns=["id"], filter=flt, use_scalar_index=False).column("id").to_pylist())
    brute = sorted(i for i, (x, y) in enumerate(xy) if 10 <= x <= 40 and 10 <= y <= 35)
    assert indexed == scanned == brute and brute
    with pytest.raises(ValueError, match="GeoArrow"):
        lr.create_scalar_index(uri, column="id", index_type="RTREE")
