"""One writer per output, and a finished run verified before it is trusted: real fruitsctl
processes racing for one folder, an S3 output claimed through moto's HTTP server, claims that
die or are lost, and previous runs whose files changed after they finished."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fruits.io.output import IN_PROGRESS, MANIFEST, STAGED, RunOutput
from fruits.io.s3_settings import S3Settings
from fruits.io.storage import Store
from fruits.pipeline import run_job
from fruits.results.export import export_run
from fruits.results.run_results import open_run
from fruits.runs.finished_run import changes_since_finished, open_finished_run
from fruits.settings.config import build_config
from fruits.settings.errors import UserError

FRUITSCTL = str(Path(sys.executable).parent / "fruitsctl")
FAULTS = Path(__file__).resolve().parents[1] / "fakes" / "faults"
BUCKET = "one-writer"


@pytest.fixture(scope="module")
def small_input(sample_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("one-writer") / "images"
    for label in ("Kiwi", "Lemon", "Banana"):
        shutil.copytree(sample_dir / label, root / label)
    return root  # 108 images


def run_command(source, output, weights, run_id, *extra) -> list[str]:
    return [
        FRUITSCTL,
        "run",
        "--spark-conf",
        "spark.ui.enabled=false",
        "--input",
        str(source),
        "--output",
        str(output),
        "--weights",
        weights,
        "--image-size",
        "32",
        "--k",
        "4",
        "--run-id",
        run_id,
        "--classifier",
        "none",
        *extra,
    ]


def gated_env(gate: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FRUITS_TEST_GATE": str(gate),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
    }


def claim_of(output: Path) -> dict:
    try:
        return json.loads((output / IN_PROGRESS).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != IN_PROGRESS)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new output", "--overwrite of a finished run"])
def test_a_run_started_while_another_featurizes_is_refused_and_the_first_publishes(
    sample_run, small_input, weights, tmp_path, overwrite
):
    output = tmp_path / "out"
    if overwrite:  # a finished run is there: it stays readable until the new one publishes
        shutil.copytree(sample_run[0], output)
    before = json.loads((output / MANIFEST).read_text()) if overwrite else None
    extra = ["--overwrite"] if overwrite else []
    gate = tmp_path / "gate"
    gate.touch()
    first = subprocess.Popen(
        [
            *run_command(small_input, output, weights, "run-a", *extra),
            "--spark-conf",
            "spark.python.daemon.module=gated_tasks",
        ],
        env=gated_env(gate),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while claim_of(output).get("run_id") != "run-a" or not gate.with_name("gate.reached").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never reached featurize"
            time.sleep(0.05)
        held = names(output)  # claimed and staged, held in featurize
        second = subprocess.run(
            run_command(small_input, output, weights, "run-b", *extra), capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 2, second.stdout + second.stderr
        said = (second.stdout + second.stderr).strip().splitlines()
        assert any(
            f"{output}' is being written by run 'run-a'" in line and "choose another --output" in line for line in said
        ), said
        assert names(output) == held  # the refused run touched nothing
        if overwrite:
            assert json.loads((output / MANIFEST).read_text()) == before  # never lost while the new one works
    finally:
        gate.unlink()
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    manifest = json.loads((output / MANIFEST).read_text())
    assert manifest["run_id"] == "run-a" and manifest["counts"]["ok"] == 108
    table = pq.read_table(output / "features")
    assert table.num_rows == 108 and len(set(table.column("path").to_pylist())) == 108
    assert not (output / STAGED).exists() and not (output / IN_PROGRESS).exists()


def test_two_runs_started_at_once_leave_exactly_one_run(small_input, weights, tmp_path):
    output = tmp_path / "out"
    runs = [
        subprocess.Popen(
            run_command(small_input, output, weights, f"run-{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    results = [(run.communicate(timeout=400)[0], run.returncode) for run in runs]
    codes = sorted(code for _, code in results)
    assert codes == [0, 2], results
    winner = next(i for i, (_, code) in zip((1, 2), results) if code == 0)
    loser_said = next(text for text, code in results if code == 2)
    assert "is being written by run" in loser_said or "already holds a finished run" in loser_said, loser_said
    manifest = json.loads((output / MANIFEST).read_text())
    assert manifest["run_id"] == f"run-{winner}" and manifest["counts"]["ok"] == 108
    assert pq.read_table(output / "features").num_rows == 108
    assert sorted(p.name for p in output.iterdir()) == ["_logs", "errors", "features", "manifest.json", "model"]
    # the refused run held nothing, so it kept no log there: only the winner's
    assert [p.name.split("-driver")[0].rsplit("-", 1)[0] for p in (output / "_logs").iterdir()] == [f"run-{winner}"]


def test_a_dead_runs_claim_is_taken_over_after_its_lease_and_a_retried_driver_takes_its_own_back(tmp_path):
    store = Store(str(tmp_path / "out"))
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=500)).isoformat()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / IN_PROGRESS).write_text(json.dumps({"run_id": "dead", "heartbeat_at": old, "lease_s": 120}))
    (tmp_path / "out" / STAGED / "dead").mkdir(parents=True)
    (tmp_path / "out" / STAGED / "dead" / "part-00000.parquet").write_bytes(b"half")
    output = RunOutput(store)
    assert output.claim("new", overwrite=False, plan="p") is False
    assert claim_of(tmp_path / "out")["run_id"] == "new" and not (tmp_path / "out" / STAGED / "dead").exists()
    retried = RunOutput(store)  # the same run id: the operator's retry of a driver that died
    assert retried.claim("new", overwrite=False, plan="p") is True  # same plan: its staged partitions kept
    assert not output.holds_claim() and retried.holds_claim()
    with pytest.raises(UserError, match="lost its claim on"):
        output.publish({})
    retried.release()
    assert not (tmp_path / "out" / IN_PROGRESS).exists()


@pytest.fixture(scope="module")
def s3_bucket(s3_server):
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=BUCKET)
    return boto3.client("s3", endpoint_url=s3_server)


def s3_config(**options):
    return build_config({"s3_path_style": True, "s3_credentials": "static", **options})


def test_on_s3_the_claim_is_a_conditional_write_and_a_held_output_is_refused(
    spark, s3_bucket, sample_dir, weights, tmp_path
):
    store = Store.at(f"s3a://{BUCKET}/race", S3Settings.of(s3_config()))
    won = []
    barrier = threading.Barrier(8)

    def claim(i):
        barrier.wait()
        won.append(store.create_exclusive("lock", str(i).encode()))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]

    holder = RunOutput(Store.at(f"s3a://{BUCKET}/held", S3Settings.of(s3_config())))
    holder.claim("nightly-1", overwrite=False, plan="x")
    keys = sorted(o["Key"] for o in s3_bucket.list_objects_v2(Bucket=BUCKET, Prefix="held/").get("Contents", []))
    config = s3_config(
        input=str(sample_dir / "Kiwi"), output=f"s3a://{BUCKET}/held", weights=weights, image_size=32, k=2
    )
    with pytest.raises(UserError, match="'s3a://one-writer/held' is being written by run 'nightly-1'"):
        run_job(spark, config)
    after = sorted(o["Key"] for o in s3_bucket.list_objects_v2(Bucket=BUCKET, Prefix="held/").get("Contents", []))
    assert after == keys
    holder.release()
    manifest = run_job(spark, config)  # released: the output is free
    assert manifest["counts"]["ok"] == 36
    left = {o["Key"] for o in s3_bucket.list_objects_v2(Bucket=BUCKET, Prefix="held/")["Contents"]}
    assert not any(key.startswith(("held/_staging", "held/_RUN_IN_PROGRESS")) for key in left), sorted(left)
    # folder markers (empty "name/" keys, which S3 writers leave) aside, only the results
    assert {key.split("/")[1] for key in left if not key.endswith("/")} == {
        "errors",
        "features",
        "model",
        "manifest.json",
    }


# ------------------------------------------------------------------ a previous run verified
@pytest.fixture
def finished_copy(sample_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(sample_run[0], copy)  # times kept, as a backup restore keeps them
    return copy


def tamper(run: Path, how: str) -> str:
    part = sorted((run / "features").glob("part-*.parquet"))[0]
    name = f"features/{part.name}"
    if how == "deleted":
        part.unlink()
    else:  # every label changed, one vector replaced: same schema, other content
        table = pq.read_table(part)
        labels = pa.array(["Tampered"] * table.num_rows)
        pq.write_table(table.set_column(table.schema.get_field_index("label"), "label", labels), part)
    return f"{name} {how}"


@pytest.mark.parametrize("how", ["deleted", "rewritten"])
def test_every_reader_refuses_a_run_whose_files_changed_after_it_finished(
    spark, finished_copy, sample_dir, weights, tmp_path, how
):
    change = tamper(finished_copy, how)
    said = f"'{finished_copy}' changed after its run finished ({change}"
    base = {"input": str(sample_dir / "Kiwi"), "weights": weights}
    for option in (
        {"incremental_from": str(finished_copy)},
        {"incremental_from": str(finished_copy), "reuse_model": True},
        {"apply_model": str(finished_copy)},
    ):
        with pytest.raises(UserError, match=f"--{next(iter(option)).replace('_', '-')} {said}".replace("(", r"\(")):
            run_job(spark, build_config({**base, **option, "output": str(tmp_path / "new")}))
        assert not (tmp_path / "new").exists()
    with pytest.raises(UserError, match=said.replace("(", r"\(")):
        open_run(str(finished_copy))  # report and evaluate
    with pytest.raises(UserError, match=said.replace("(", r"\(")):
        export_run(str(finished_copy), tmp_path / "phone", build_config({}))


def test_a_copy_with_new_file_times_is_still_the_same_run(sample_run, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(sample_run[0], copy, copy_function=shutil.copy)  # new times, same bytes
    run = open_finished_run(str(copy), S3Settings(), "--incremental-from")
    assert changes_since_finished(run) == []
    (copy / "model" / "extra.txt").write_text("not the run's")
    assert changes_since_finished(run) == ["model/extra.txt added"]
