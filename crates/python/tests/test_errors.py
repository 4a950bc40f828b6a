"""Errors as a Python user expects them: the engine's error kinds as
``lanceflow`` exceptions that also derive from the fitting builtin, checks
made before any work, and the executor chosen as the CLI chooses it."""

import os

import pytest

import lanceflow
from conftest import write_records

lance = pytest.importorskip("lance")


@pytest.fixture()
def small(tmp_path):
    records = write_records(str(tmp_path / "r.jsonl"), 50)
    uri = str(tmp_path / "s.lance")
    lanceflow.ingest(records, uri)
    return records, uri


def test_exceptions_derive_from_the_builtins(small, tmp_path):
    records, uri = small
    # Invalid input is a ValueError (code catching ValueError keeps working).
    with pytest.raises(ValueError, match="max-rows-per-file") as e:
        lanceflow.ingest(records, str(tmp_path / "x.lance"), max_rows_per_file=0)
    assert isinstance(e.value, lanceflow.InvalidInputError)
    # Something missing: FileNotFoundError and KeyError; the message unquoted.
    missing = str(tmp_path / "missing.lance")
    for builtin in (FileNotFoundError, KeyError):
        with pytest.raises(builtin) as e:
            lanceflow.info(missing)
        assert isinstance(e.value, lanceflow.NotFoundError)
        assert str(e.value).startswith("open dataset: no Lance dataset"), str(e.value)
    # The target exists: FileExistsError.
    with pytest.raises(FileExistsError) as e:
        lanceflow.ingest(records, uri, mode="create")
    assert isinstance(e.value, lanceflow.AlreadyExistsError)
    assert isinstance(e.value, lanceflow.LanceflowError)
    assert issubclass(lanceflow.StorageError, OSError)
    assert issubclass(lanceflow.CommitConflictError, RuntimeError)
    assert issubclass(lanceflow.TasksFailedError, RuntimeError)
    assert issubclass(lanceflow.NotSupportedError, NotImplementedError)
    assert lance.dataset(uri).version == 1


def test_an_idempotency_key_applies_an_ingest_once(small, tmp_path):
    _, uri = small
    more = write_records(str(tmp_path / "more.jsonl"), 20, start=50)
    first = lanceflow.ingest(more, uri, mode="append", idempotency_key="batch-7")
    again = lanceflow.ingest(more, uri, mode="append", idempotency_key="batch-7")
    assert (first["already_applied"], first["rows_written"]) == (False, 20)
    assert (again["already_applied"], again["version"]) == (True, first["version"])
    assert lance.dataset(uri).count_rows() == 70
    with pytest.raises(ValueError, match="idempotency-key"):
        lanceflow.ingest(more, uri, mode="append", idempotency_key="two words")


def test_executor_choices_are_checked(small, monkeypatch):
    _, uri = small
    # num_workers=0 is refused before Ray is even started.
    with pytest.raises(lanceflow.InvalidInputError, match="num_workers"):
        lanceflow.RayExecutor(num_workers=0)
    # LANCEFLOW_EXECUTOR picks the default executor, as in the CLI.
    monkeypatch.setenv("LANCEFLOW_EXECUTOR", "bogus")
    with pytest.raises(ValueError, match="LANCEFLOW_EXECUTOR"):
        lanceflow.info(uri)
    monkeypatch.setenv("LANCEFLOW_EXECUTOR", "local")
    assert lanceflow.info(uri)["rows"] == 50
    assert os.environ["LANCEFLOW_EXECUTOR"] == "local"
