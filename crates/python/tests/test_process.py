"""Process behaviour of the native module: fork safety and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import lanceflow

lance = pytest.importorskip("lance")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, records):
    uri = str(tmp_path_factory.mktemp("proc") / "d.lance")
    lanceflow.ingest(records, uri, max_rows_per_file=100)
    lanceflow.embed(uri, "text", rows_per_task=200)
    return uri


def test_forked_child_gets_its_own_runtime_and_model(embedded):
    script = textwrap.dedent(
        """
        import json, multiprocessing as mp, sys
        import lanceflow

        uri = sys.argv[1]

        def search():
            t = lanceflow.vector_search(
                uri, query_text="river data", k=5, columns=["id"], distributed=True
            )
            return t.column("id").to_pylist()

        parent = search()  # runtime, executor threads and the model now exist
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=lambda: q.put(search()))
        p.start()
        child = q.get(timeout=120)
        p.join(60)
        print(json.dumps({"parent": parent, "child": child, "code": p.exitcode}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, embedded], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert len(result["parent"]) == 5
    assert result["child"] == result["parent"]


def test_ctrl_c_stops_the_job_and_commits_nothing(embedded):
    version = lance.dataset(embedded).version
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lanceflow",
            "embed",
            embedded,
            "--column",
            "title",
            "--to-column",
            "title_vector",
            "--rows-per-task",
            "25",
            "--workers",
            "1",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stderr:
            if '"task_finished"' in line or "TaskFinished" in line:
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130, rest
    assert "interrupted" in rest
    assert lance.dataset(embedded).version == version
    fields = lance.dataset(embedded).schema.names
    assert "title_vector" not in fields
