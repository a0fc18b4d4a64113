"""Incremental runs and applying a run's model, on the Fruits-360 sample with real Spark.

The input grows between two runs as a nightly bucket does: a tenth of the images arrive,
one is rewritten (new time, same bytes), one is deleted. An incremental run over the grown
input must equal a full run over it.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.io.output import IN_PROGRESS, MANIFEST
from fruits.io.storage import Store
from fruits.pipeline import run_job
from fruits.settings.config import build_config
from fruits.settings.errors import UserError
from fruits.write.model_files import load_reduction

runner = CliRunner()


def rows(output: Path):
    table = pq.read_table(output / "features").to_pandas()
    return table.assign(file=table["path"].str.split("/").str[-2:].str.join("/")).set_index("file").sort_index()


def same_up_to_sign(one: np.ndarray, other: np.ndarray, atol: float) -> None:
    signs = np.sign((one * other).sum(axis=0))
    np.testing.assert_allclose(one, other * signs, atol=atol)


@pytest.fixture(scope="module")
def grown(spark, sample_dir, weights, tmp_path_factory):
    base = tmp_path_factory.mktemp("incremental")
    images = base / "images"
    shutil.copytree(sample_dir, images)  # copy2: sizes and times kept
    files = sorted(images.glob("*/*.jpg"))
    arriving, rewritten, deleted = files[::10], files[1], files[2]
    held = base / "held"
    for path in arriving:
        (held / path.parent.name).mkdir(parents=True, exist_ok=True)
        path.rename(held / path.parent.name / path.name)
    # no head: its fit is not what these runs test (test_classifier_head.py tests it incremental)
    settings = {"input": str(images), "weights": weights, "classifier": "none"}
    first = run_job(spark, build_config({**settings, "output": str(base / "runs" / "a")}))
    for path in arriving:
        (held / path.parent.name / path.name).rename(path)
    os.utime(rewritten, ns=(rewritten.stat().st_atime_ns, rewritten.stat().st_mtime_ns + 10**9))
    deleted.unlink()
    incremental = run_job(
        spark,
        build_config({**settings, "output": str(base / "runs" / "b"), "incremental_from": f"latest:{base / 'runs'}"}),
    )
    full = run_job(spark, build_config({**settings, "output": str(base / "full")}))
    # the same from a previous run that saved no moments (an older run): the kept rows are tallied again
    shutil.copytree(base / "runs" / "a", base / "older")
    (base / "older" / "model" / "moments.npz").unlink()
    as_written_by_an_older_version(base / "older")
    retallied = run_job(
        spark, build_config({**settings, "output": str(base / "retallied"), "incremental_from": str(base / "older")})
    )
    return {
        "base": base,
        "images": images,
        "arriving": arriving,
        "first": first,
        "incremental": incremental,
        "full": full,
        "retallied": retallied,
        "settings": settings,
    }


@pytest.mark.parametrize("run, folder", [("incremental", "runs/b"), ("retallied", "retallied")])
def test_an_incremental_run_equals_a_full_run_on_the_same_input(grown, run, folder):
    base = grown["base"]
    incremental, full = rows(base / folder), rows(base / "full")
    assert list(incremental.index) == list(full.index)
    assert list(incremental["label"]) == list(full["label"])
    np.testing.assert_allclose(np.stack(incremental["features"]), np.stack(full["features"]), atol=1e-5)
    assert grown[run]["pca"]["k"] == grown["full"]["pca"]["k"]
    np.testing.assert_allclose(
        grown[run]["pca"]["explained_variance"], grown["full"]["pca"]["explained_variance"], atol=1e-9
    )
    same_up_to_sign(np.stack(incremental["pca"]), np.stack(full["pca"]), atol=1e-3)
    assert grown[run]["labels"] == grown["full"]["labels"] and grown[run]["splits"] == grown["full"]["splits"]
    assert grown[run]["counts"] == grown["full"]["counts"]


def test_the_manifest_says_what_was_reused_featurized_and_removed(grown):
    summary, first = grown["incremental"]["incremental"], grown["first"]
    assert summary["previous_run_id"] == first["run_id"]
    assert summary["previous_output"] == str(grown["base"] / "runs" / "a")
    assert summary["changed"] == 1 and summary["removed"] == 1
    assert summary["reused"] == first["counts"]["ok"] - 2
    assert summary["featurized"] == len(grown["arriving"]) + 1
    assert summary["model"] == "refit"
    assert grown["full"]["incremental"] is None


def test_the_new_output_stands_on_its_own(grown, tmp_path):
    alone = tmp_path / "b"
    shutil.copytree(grown["base"] / "runs" / "b", alone)  # without the run it reused rows from
    assert sorted(p.name for p in alone.iterdir()) == ["errors", "features", "manifest.json", "model"]
    assert (alone / "model" / "moments.npz").is_file()  # what the next incremental run starts from
    assert list(rows(alone).index) == list(rows(grown["base"] / "full").index)


def test_reuse_model_keeps_the_previous_scaler_and_pca_and_transform_applies_it(spark, tmp_path, weights, sample_dir):
    previous = tmp_path / "runs" / "a"
    first = run_job(spark, build_config({"input": str(sample_dir), "weights": weights, "output": str(previous)}))
    manifest = run_job(
        spark,
        build_config(
            {
                "input": str(sample_dir),
                "weights": weights,
                "output": str(tmp_path / "c"),
                "incremental_from": str(previous),
                "reuse_model": True,
            }
        ),
    )
    assert manifest["pca"]["k"] == first["pca"]["k"]
    assert manifest["pca"]["fitted_by"] == {"run_id": first["run_id"], "output": str(previous)}
    assert manifest["incremental"]["reused"] == first["counts"]["ok"] and manifest["incremental"]["featurized"] == 0
    assert manifest["incremental"]["model"] == "reused"
    before, after = rows(previous), rows(tmp_path / "c")
    np.testing.assert_allclose(np.stack(after["pca"]), np.stack(before["pca"]), atol=1e-5)

    # transform: the run's model applied to a folder of images, its settings (the weights file)
    # taken from the run: the same values as the run gave those images
    result = runner.invoke(
        app,
        [
            "transform",
            "--model",
            str(previous),
            "--input",
            str(sample_dir / "Kiwi"),
            "--output",
            str(tmp_path / "t"),
            "--verbose",
        ],
    )
    assert result.exit_code == 0, result.output
    applied = json.loads((tmp_path / "t" / MANIFEST).read_text())
    assert applied["config"]["weights"] == weights and applied["config"]["apply_model"] == str(previous)
    assert applied["pca"]["fitted_by"]["run_id"] == first["run_id"] and applied["pca"]["k"] == first["pca"]["k"]
    transformed = rows(tmp_path / "t")
    reduction = load_reduction(Store(str(previous)), "model")
    features = np.stack(transformed["features"]).astype(np.float64)
    np.testing.assert_allclose(np.stack(transformed["pca"]), features @ reduction.weights + reduction.bias, atol=1e-4)
    np.testing.assert_allclose(
        np.stack(transformed["pca"]), np.stack(before.loc[transformed.index, "pca"]), atol=1e-4
    )  # same images, same model: the same values as the run itself


def test_latest_picks_the_newest_finished_run_with_the_same_settings_and_starts_a_chain_with_a_full_run(
    spark, sample_dir, weights, tmp_path
):
    settings = {"input": str(sample_dir / "Kiwi"), "weights": weights, "k": 3}
    runs = tmp_path / "runs"
    first = run_job(
        spark, build_config({**settings, "output": str(runs / "one"), "incremental_from": f"latest:{runs}"})
    )
    assert first["incremental"] is None and "No finished run under" in first["warnings"][0]
    (runs / "dead").mkdir()
    (runs / "dead" / IN_PROGRESS).write_text("{}")  # an unfinished run is never chosen
    second = run_job(
        spark, build_config({**settings, "output": str(runs / "two"), "incremental_from": f"latest:{runs}"})
    )
    third = run_job(
        spark, build_config({**settings, "output": str(runs / "three"), "incremental_from": f"latest:{runs}"})
    )
    assert second["incremental"]["previous_run_id"] == first["run_id"]
    assert third["incremental"]["previous_run_id"] == second["run_id"]
    assert third["incremental"]["featurized"] == 0
    # changed settings start a new chain; the old chain's newest run is still found by its own settings
    resized = run_job(
        spark,
        build_config(
            {**settings, "image_size": 64, "output": str(runs / "four"), "incremental_from": f"latest:{runs}"}
        ),
    )
    assert resized["incremental"] is None and any("Passed over 3 newer run(s)" in w for w in resized["warnings"])
    fifth = run_job(
        spark, build_config({**settings, "output": str(runs / "five"), "incremental_from": f"latest:{runs}"})
    )
    assert fifth["incremental"]["previous_run_id"] == third["run_id"]
    assert any("Passed over 1 newer run(s)" in w and "four" in w for w in fifth["warnings"])


def as_written_by_an_older_version(run: Path) -> None:
    """An older version's manifest recorded no `contents`: its files cannot be checked."""
    manifest = json.loads((run / MANIFEST).read_text())
    del manifest["contents"]
    (run / MANIFEST).write_text(json.dumps(manifest))


def test_an_older_runs_output_without_file_times_is_refused(spark, sample_dir, weights, tmp_path):
    old = tmp_path / "old"
    run_job(spark, build_config({"input": str(sample_dir / "Kiwi"), "weights": weights, "output": str(old), "k": 2}))
    for part in (old / "features").glob("*.parquet"):
        table = pq.read_table(part)
        pq.write_table(table.drop_columns(["size", "modified"]), part)
    as_written_by_an_older_version(old)
    with pytest.raises(UserError, match="made by an older version of the job"):
        run_job(
            spark,
            build_config(
                {
                    "input": str(sample_dir / "Kiwi"),
                    "weights": weights,
                    "output": str(tmp_path / "new"),
                    "incremental_from": str(old),
                }
            ),
        )
    assert not (tmp_path / "new").exists()


def _unfinished(tmp_path: Path) -> str:
    folder = tmp_path / "unfinished"
    folder.mkdir()
    (folder / IN_PROGRESS).write_text("{}")
    return str(folder)


def _model_missing(tmp_path: Path, finished: Path) -> str:
    folder = tmp_path / "no-model"
    shutil.copytree(finished, folder)
    shutil.rmtree(folder / "model")
    return str(folder)


@pytest.mark.parametrize(
    "case, message",
    [
        ("unfinished", "holds no finished run (no manifest.json"),
        ("missing", "does not exist: give the output folder"),
        ("other size", "was made with --image-size 96, this run uses 64"),
        ("same output", "is this run's --output"),
        ("model missing", "changed after its run finished (model/metadata/part-00000 deleted"),
        ("apply with another size", "--image-size 64 differs from the 96 of the run whose model is applied"),
    ],
)
def test_bad_previous_runs_are_refused_in_one_sentence(spark, sample_run, sample_dir, tmp_path, case, message):
    finished, manifest, _ = sample_run
    weights = manifest["config"]["weights"]
    settings = {"input": str(sample_dir / "Kiwi"), "weights": weights, "output": str(tmp_path / "out")}
    settings.update(
        {
            "unfinished": {"incremental_from": _unfinished(tmp_path)},
            "missing": {"incremental_from": str(tmp_path / "nowhere")},
            "other size": {"incremental_from": str(finished), "image_size": 64},
            "same output": {"incremental_from": str(finished), "output": str(finished), "overwrite": True},
            "model missing": {"apply_model": _model_missing(tmp_path, finished) if case == "model missing" else ""},
            "apply with another size": {"apply_model": str(finished), "image_size": 64},
        }[case]
    )
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        run_job(spark, build_config(settings))
    assert (finished / MANIFEST).is_file() and (finished / "features").is_dir()  # the previous run is untouched
    assert case == "same output" or not (tmp_path / "out" / MANIFEST).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--reuse-model"], "--reuse-model keeps the model of the run given to --incremental-from"),
        (["--incremental-from", "x", "--apply-model", "y"], "Give either --apply-model or --incremental-from"),
    ],
)
def test_option_combinations_that_make_no_sense_exit_2(args, message, tmp_path):
    result = runner.invoke(app, ["run", "--input", str(tmp_path), "--output", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_transform_needs_a_finished_run(tmp_path):
    result = runner.invoke(
        app, ["transform", "--model", _unfinished(tmp_path), "--input", str(tmp_path), "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "--apply-model" in result.output and "holds no finished run" in " ".join(result.output.split())
