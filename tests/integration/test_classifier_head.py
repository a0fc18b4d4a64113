"""The classifier head (--classifier logistic, the default): held out in Spark exactly as
evaluate holds out, chosen on that split, saved as the model's last stages, kept by runs
that apply the model and left out by --classifier none. Real Spark, the Fruits-360 sample."""

import filecmp
import hashlib
import json

import numpy as np
import pytest

from fruits.fit.held_out import HELD_OUT, NUMBER_BLOCKS, RANDOM_SPLIT, SPLIT_COLUMN, held_out
from fruits.fit.reduce import FEATURES_VECTOR
from fruits.pipeline import run_job
from fruits.results.evaluate import number_blocks
from fruits.settings.config import build_config


def spark_mask(spark, labels, paths, splits=None):
    rows = list(zip(labels, paths, splits or [None] * len(paths)))
    frame = spark.createDataFrame(rows, "label string, path string, split string")
    marked, how = held_out(frame)
    chosen = {row.path for row in marked.filter(HELD_OUT).collect()}
    return np.array([path in chosen for path in paths]), how


def test_spark_holds_out_the_same_frames_as_number_blocks(spark):
    paths, labels = [], []
    # videos of every length around the rounding edges (5 * 0.3 and 15 * 0.3 round half to even),
    # one too short to hold out, leading zeros, a second number in the name, a folder with digits
    for label, video, frames in [
        ("Kiwi", "", 15),
        ("Kiwi", "r_", 5),
        ("Kiwi", "r2_", 3),
        ("Lemon 2", "", 25),
        ("Lemon 2", "IMG_", 7),
        ("Pear", "x", 4),
    ]:
        for n in range(frames):
            number = f"{7 * n + 3:04d}" if video == "IMG_" else str(11 * n + (n % 3))
            paths.append(f"s3a://bucket/in 2024/{label}/{video}{number}_100.jpg")
            labels.append(label)
    paths.append("s3a://bucket/in 2024/Pear/x90_100.jpg")  # out of order in the listing
    labels.append("Pear")
    expected = number_blocks(np.array(labels, dtype=object), paths)
    assert expected is not None and 0 < expected.sum() < len(paths)
    mask, how = spark_mask(spark, labels, paths)
    assert how == NUMBER_BLOCKS
    assert mask.tolist() == expected.tolist()


def test_the_split_column_wins_and_unnumbered_names_fall_back_to_the_labelled_random_split(spark):
    labels = ["Kiwi"] * 10
    splits = ["Training"] * 7 + ["Test"] * 3
    paths = [f"/in/{split}/Kiwi/{n}_100.jpg" for n, split in enumerate(splits)]
    mask, how = spark_mask(spark, labels, paths, splits)
    assert how == SPLIT_COLUMN and mask.tolist() == [False] * 7 + [True] * 3
    unnumbered = [f"/in/Kiwi/photo-{chr(97 + n)}.jpg" for n in range(10)]
    mask, how = spark_mask(spark, labels, unnumbered)
    assert how == RANDOM_SPLIT and mask.sum() == 3


def test_the_head_is_chosen_on_held_out_frames_and_recorded(sample_run):
    _, manifest, _ = sample_run
    head = manifest["classifier"]
    assert head["kind"] == "logistic" and head["labels"] == 18 and head["split"] == NUMBER_BLOCKS
    assert head["label_names"] == sorted(manifest["labels"])
    grid = head["held_out_top1_by_reg_param"]
    assert set(grid) == {"0.0001", "0.001", "0.01"}
    assert grid[repr(head["reg_param"])] == max(grid.values())  # the selection fits' best
    assert head["held_out_top1"] >= 0.95  # the chosen one fitted to the end, on the same rows
    assert head["train_rows"] + head["test_rows"] == manifest["counts"]["ok"]
    assert 0.2 < head["test_rows"] / manifest["counts"]["ok"] < 0.4
    assert head["fitted_by"] is None and manifest["timings_s"]["classifier"] > 0


def test_pipeline_model_load_gives_scaler_pca_and_the_head_and_names_the_fruit(spark, sample_run):
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import array_to_vector

    output, manifest, table = sample_run
    model = PipelineModel.load(str(output / "model"))
    kinds = [type(stage).__name__ for stage in model.stages]
    assert kinds == ["StandardScalerModel", "PCAModel", "LogisticRegressionModel", "IndexToString"]
    # the head's files are published and recorded like every model file (what readers verify)
    on_disk = sorted(str(p.relative_to(output)) for p in (output / "model").rglob("*") if p.is_file())
    assert sorted(path for path in manifest["contents"] if path.startswith("model/")) == on_disk
    for path in on_disk:
        assert manifest["contents"][path]["sha256"] == hashlib.sha256((output / path).read_bytes()).hexdigest()
    stage_files = [path for path in on_disk if path.startswith("model/stages/2_")]
    assert any("/data/" in path for path in stage_files) and any("/metadata/" in path for path in stage_files)
    images = spark.read.parquet(str(output / "features")).select("label", "features")
    frame = images.withColumn(FEATURES_VECTOR, array_to_vector("features"))  # the scaler's input column
    predicted = model.transform(frame).select("label", "prediction", "predicted_label").toPandas()
    names = manifest["classifier"]["label_names"]
    assert (predicted["predicted_label"] == [names[int(i)] for i in predicted["prediction"]]).all()
    assert len(predicted) == len(table)
    assert (predicted["predicted_label"] == predicted["label"]).mean() >= 0.95


@pytest.fixture(scope="module")
def reruns(spark, sample_dir, weights, sample_run, tmp_path_factory):
    """Two incremental runs on the sample run (every row reused: no CNN): one keeping its model,
    one refitting it with --classifier none."""
    output = sample_run[0]
    base = tmp_path_factory.mktemp("heads")
    settings = {"input": str(sample_dir), "weights": weights, "incremental_from": str(output)}
    kept = run_job(spark, build_config({**settings, "output": str(base / "kept"), "reuse_model": True}))
    none = run_job(spark, build_config({**settings, "output": str(base / "none"), "classifier": "none"}))
    return output, base, kept, none


def test_reuse_model_keeps_the_head_unchanged(reruns):
    output, base, kept, _ = reruns
    first = json.loads((output / "manifest.json").read_text())["classifier"]
    assert kept["classifier"] == {**first, "fitted_by": kept["pca"]["fitted_by"]}
    assert kept["pca"]["fitted_by"]["run_id"] == first_run_id(output)
    assert "classifier" not in kept["timings_s"]  # not refitted
    stages = [head_stages(output), head_stages(base / "kept")]
    assert stages[0] == stages[1] and [name[:2] for name in stages[0]] == ["2_", "3_"]
    for name in stages[0]:
        for folder in ("metadata", "data"):
            if (output / "model" / "stages" / name / folder).exists():
                one, other = (run / "model" / "stages" / name / folder for run in (output, base / "kept"))
                compared = filecmp.dircmp(one, other)
                assert not compared.diff_files and not compared.left_only, (name, folder)


def head_stages(run):
    return sorted(p.name for p in (run / "model" / "stages").iterdir() if not p.name.startswith(("0_", "1_")))


def first_run_id(output):
    return json.loads((output / "manifest.json").read_text())["run_id"]


def test_classifier_none_saves_the_scaler_and_pca_only(reruns):
    from pyspark.ml import PipelineModel

    _, base, _, none = reruns
    assert none["classifier"] is None and "classifier" not in none["timings_s"]
    model = PipelineModel.load(str(base / "none" / "model"))
    assert [type(stage).__name__ for stage in model.stages] == ["StandardScalerModel", "PCAModel"]
    assert not [path for path in none["contents"] if path.startswith(("model/stages/2_", "model/stages/3_"))]


def test_export_refuses_the_logistic_head_of_a_run_without_one(reruns, tmp_path):
    from fruits.results.export import export_run
    from fruits.settings.config import DEFAULTS
    from fruits.settings.errors import UserError

    _, base, _, _ = reruns
    with pytest.raises(UserError, match="has no classifier head"):
        export_run(str(base / "none"), tmp_path / "phone", DEFAULTS, classifier="logistic")
    assert not (tmp_path / "phone").exists()


def test_the_fits_run_one_task_per_core_whatever_the_shuffle_partitions(spark, sample_run):
    """spark-submit's and the chart's runs keep Spark's 200 shuffle partitions, which the split's
    window functions leave on the rows: each L-BFGS pass must not become 200 tasks."""
    from fruits.fit.classifier import fit_head

    context = spark.sparkContext
    cores = context.defaultParallelism
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "200")
    context.setJobGroup("head-tasks", "the head's fits")
    try:
        head = fit_head(spark, f"file:{sample_run[0] / 'features'}")
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        spark.conf.set("spark.sql.shuffle.partitions", before)
    assert head is not None and head.held_out_top1 >= 0.95
    tracker = context.statusTracker()
    stages = [
        info
        for job in tracker.getJobIdsForGroup("head-tasks")
        if (job_info := tracker.getJobInfo(job)) is not None
        for stage in job_info.stageIds
        if (info := tracker.getStageInfo(stage)) is not None and info.numTasks
    ]
    assert len(stages) > 100  # every iteration of each fit: a job of its own
    wide = [info for info in stages if info.numTasks > cores]
    assert len(wide) <= 5, [info.numTasks for info in wide]  # the split's window, once; not the fits
