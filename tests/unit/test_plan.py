"""The run plan, the manifest and the stages' tasks, without Spark: the plan is built from
plain values, the manifest from typed records, and each Spark task is a callable that a test
runs on local files."""

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pytest

from fruits.fit.moments import Moments
from fruits.fit.reduce import fit_reduction
from fruits.fit.tally import RunTally, stats_file
from fruits.ingest.listing import ListedImage, Listing
from fruits.io.output import FEATURES_SCHEMA, STAGED, STAGED_SCHEMA, part_file
from fruits.io.storage import Store
from fruits.io.vectors import from_arrow, to_arrow
from fruits.plan import IMAGES_PER_TASK, choose_partitions, plan_fingerprint, plan_run, with_run_id
from fruits.runs.finished_run import FinishedRun
from fruits.runs.reuse import ReusePlan, TallySources
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError
from fruits.write.manifest import FORMAT, Manifest, upgraded
from fruits.write.projection import ProjectSources, RowSource

CONFIG = JobConfig(input="/data/in", output="/data/out-{run_id}")


def listing(count: int) -> Listing:
    found = Listing()
    for i in range(count):
        found.add_file(f"file:/data/in/Training/{'Apple' if i % 2 else 'Kiwi'}/{i:04d}.jpg", 1000 + i, i * 1000)
    return found


def test_a_plan_cuts_the_listing_into_tasks_for_the_cores():
    plan = plan_run(with_run_id(CONFIG, "r1"), "r1", listing(10), cores=4)
    assert plan.config.output == "/data/out-r1" and plan.run_id == "r1" and plan.images == 10
    assert sorted(plan.tasks) == [0, 1, 2, 3] and sum(map(len, plan.tasks.values())) == 10
    first = plan.tasks[0][0]
    assert first == ListedImage("file:/data/in/Training/Kiwi/0000.jpg", "Kiwi", "Training", 1000, 0)
    assert [image.path for task in plan.tasks.values() for image in task] == listing(10).paths  # in order
    assert plan.kept == {} and plan.reuse is None and plan.applied is None


def test_the_same_input_always_plans_the_same_run():
    one = plan_run(CONFIG, "r1", listing(7), cores=2)
    two = plan_run(CONFIG, "r1", listing(7), cores=2)
    assert one.tasks == two.tasks and one.fingerprint == two.fingerprint
    assert plan_run(CONFIG, "r1", listing(8), cores=2).fingerprint != one.fingerprint  # one more image
    other_size = dataclasses.replace(CONFIG, image_size=128)
    assert plan_run(other_size, "r1", listing(7), cores=2).fingerprint != one.fingerprint
    assert plan_run(dataclasses.replace(CONFIG, k=3), "r1", listing(7), cores=2).fingerprint == one.fingerprint


def test_partitions_are_whole_waves_of_at_most_images_per_task():
    assert choose_partitions(10, 4) == 4
    assert choose_partitions(3, 8) == 3  # no empty task
    assert choose_partitions(2 * 4 * IMAGES_PER_TASK + 1, 4) == 12  # a third wave
    assert plan_run(dataclasses.replace(CONFIG, partitions=3), "r", listing(10), cores=8).tasks.keys() == {0, 1, 2}


def test_a_run_needs_its_input_and_output():
    with pytest.raises(UserError, match="needs both --input and --output"):
        with_run_id(JobConfig(input="/in"), "r1")


def test_an_incremental_plan_featurizes_only_what_changed_and_keeps_the_rest():
    previous = FinishedRun("/runs/old", Store("/runs/old"), {"run_id": "old"})
    everything = listing(6)
    reuse = ReusePlan(previous, everything.subset([4, 5]), reuse={"part-00000.parquet": [0, 1, 2, 3]}, reused=4)
    plan = plan_run(CONFIG, "new", everything, cores=2, reuse=reuse)
    assert sorted(plan.tasks) == [0, 1] and [len(t) for t in plan.tasks.values()] == [1, 1]
    assert plan.kept == {2: RowSource(previous.store, "features/part-00000.parquet", [0, 1, 2, 3])}
    assert plan.fingerprint != plan_run(CONFIG, "new", everything, cores=2).fingerprint  # the previous run counts
    assert plan_fingerprint(everything, 2, CONFIG, "old") == plan.fingerprint


def staged_rows(store: Store, partition: int, vectors: np.ndarray) -> None:
    count = len(vectors)
    table = pa.table(
        [
            [f"file:/in/L/{i}.jpg" for i in range(count)],
            ["L" if i % 2 else "M" for i in range(count)],
            [None] * count,
            list(range(count)),
            pa.array(list(range(count)), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            to_arrow(vectors.astype(np.float32)),
        ],
        schema=STAGED_SCHEMA,
    )
    store.write(f"{STAGED}/{part_file(partition)}", table)


def test_the_projection_task_writes_each_sources_rows_with_their_pca(tmp_path):
    store = Store(str(tmp_path))
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(9, 5))
    staged_rows(store, 0, vectors)
    reduction = fit_reduction(Moments.of(vectors.astype(np.float32).astype(np.float64)), k=2, variance=0.95)
    task = ProjectSources(reduction.weights, reduction.bias, store, "features", rows_per_batch=4)
    sources = [
        (0, RowSource(store, f"{STAGED}/{part_file(0)}")),
        (1, RowSource(store, f"{STAGED}/{part_file(0)}", [2, 5])),
    ]
    assert [done.rows for done in task(iter(sources))] == [9, 2]
    whole, kept = (store.read_table(f"features/{part_file(p)}") for p in (0, 1))
    assert task.project(0, sources[0][1]).sha256 == store.sha256(f"features/{part_file(0)}")  # hashed as written
    assert whole.schema == FEATURES_SCHEMA and kept["path"].to_pylist() == ["file:/in/L/2.jpg", "file:/in/L/5.jpg"]
    expected = vectors.astype(np.float32).astype(np.float64) @ reduction.weights + reduction.bias
    np.testing.assert_allclose(from_arrow(whole.column("pca")), expected, rtol=1e-5, atol=1e-5)
    (empty,) = task(iter([(2, RowSource(store, f"{STAGED}/{part_file(0)}", []))]))
    assert empty.rows == 0 and empty.sha256 == ""  # no rows, no file
    assert not (tmp_path / "features" / part_file(2)).exists()


def test_the_tally_task_counts_a_previous_runs_kept_rows(tmp_path):
    store = Store(str(tmp_path))
    vectors = np.arange(12, dtype=np.float64).reshape(4, 3) ** 1.5
    staged_rows(store, 0, vectors)
    task = TallySources(fit_fraction=1.0, seed=0, store=store, folder="tallies")
    assert list(task(iter([(7, RowSource(store, f"{STAGED}/{part_file(0)}", [0, 1, 3]))]))) == [7]
    tally = RunTally.from_bytes(store.read_bytes(f"tallies/{stats_file(7)}"))
    assert tally.ok == 3 and dict(tally.labels) == {"M": 1, "L": 2}
    np.testing.assert_allclose(tally.moments.mean, vectors[[0, 1, 3]].astype(np.float32).mean(axis=0), rtol=1e-6)


def test_the_manifest_is_one_typed_record_and_older_runs_read_as_the_current_format():
    fields = {f.name for f in dataclasses.fields(Manifest)}
    assert {"run_id", "counts", "backbone", "pca", "featurize", "config", "versions"} <= fields
    old = {
        "format": "fruits-run/1",
        "run_id": "r",
        "model": {"name": "mobilenet_v2", "image_size": 96},
        "config": {"model": "mobilenet_v2", "image_size": 96},
    }
    new = upgraded(old)
    # runs from before --precision were float32, their converted models unhashed
    assert new["backbone"] == {**old["model"], "precision": "float32", "model_sha256": None} and "model" not in new
    assert new["config"] == {"backbone": "mobilenet_v2", "image_size": 96, "precision": "float32"}
    current = {"format": FORMAT, "backbone": {"name": "resnet50", "precision": "int8", "model_sha256": "ab"}}
    assert upgraded(current) == current
    assert json.loads(json.dumps(upgraded(old)))["backbone"]["name"] == "mobilenet_v2"
