"""The whole job on the real Fruits-360 sample with the shared pretrained backbone (run once)."""

import hashlib
import json
import re

import numpy as np
import pytest

from fruits.fit.reduce import apply_reduction, load_reduction_model


@pytest.fixture(scope="module")
def run(sample_run):
    return sample_run


def test_every_image_becomes_one_row_with_its_folder_label(run, sample_dir):
    _, manifest, table = run
    assert len(table) == 648 and table["path"].is_unique
    assert manifest["counts"] == {
        "read": 648,
        "ok": 648,
        "failed": 0,
        "skipped": {"not an image (extension)": 1},
        "read_retries": 0,
    }
    classes = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())
    assert sorted(table["label"].unique()) == classes and len(classes) == 18
    assert all(path.split("/")[-2] == label for path, label in zip(table["path"], table["label"]))
    assert table["split"].isna().all()  # <label>/<file> layout: no split


def test_vectors_have_the_backbone_and_pca_sizes(run):
    _, manifest, table = run
    assert {len(v) for v in table["features"]} == {1280}
    assert {len(v) for v in table["pca"]} == {manifest["pca"]["k"]}
    assert np.isfinite(np.stack(table["pca"].to_numpy())).all()


def test_k_is_the_smallest_reaching_the_variance_target(run):
    _, manifest, _ = run
    pca = manifest["pca"]
    cumulative = np.cumsum(pca["explained_variance"])
    k = pca["k"]
    assert 1 < k < 648
    assert cumulative[k - 1] >= 0.95 > cumulative[k - 2]
    assert pca["variance_kept"] == pytest.approx(cumulative[k - 1])


def test_manifest_is_written_last_and_complete(run):
    output, manifest, _ = run
    on_disk = json.loads((output / "manifest.json").read_text())
    assert on_disk == manifest
    assert not (output / "_RUN_IN_PROGRESS").exists()
    assert manifest["backbone"] == {
        "name": "mobilenet_v2",
        "weights": manifest["config"]["weights"],
        "image_size": 96,
        "feature_dim": 1280,
        "precision": "int8",
        "model_sha256": manifest["backbone"]["model_sha256"],
    }
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["backbone"]["model_sha256"])
    assert set(manifest["timings_s"]) >= {"ingest", "featurize", "reduce", "write", "total"}
    assert manifest["cost"]["core_seconds_per_1000_images"] > 0
    assert manifest["versions"]["spark"].startswith("3.5") and "tensorflow-cpu" in manifest["versions"]
    assert len(manifest["labels"]) == 18 and sum(manifest["labels"].values()) == 648
    assert (output / "errors").is_dir() and (output / "model").is_dir() and not (output / "_staging").exists()
    # every result file as published, with its size and content hash (what later readers verify)
    files = sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(manifest["contents"]) == files and any(f.startswith("features/") for f in files)
    for name, recorded in manifest["contents"].items():
        assert recorded["bytes"] == (output / name).stat().st_size
        assert recorded["sha256"] == hashlib.sha256((output / name).read_bytes()).hexdigest()
    # the manifest is the newest file of the output
    newest = max((p for p in output.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name in ("manifest.json", ".manifest.json.crc")


def test_saved_model_reproduces_the_pca_values(run, spark):
    output, _, table = run
    model = load_reduction_model(str(output / "model"))
    features = spark.read.parquet(str(output / "features")).select("path", "features")
    again = apply_reduction(model, features).toPandas().set_index("path").loc[table["path"]]
    np.testing.assert_allclose(
        np.stack(again["pca"].to_numpy()), np.stack(table["pca"].to_numpy()), rtol=1e-5, atol=1e-4
    )


def test_pca_features_separate_the_fruits_on_held_out_images(run):
    _, _, table = run
    vectors, labels = np.stack(table["pca"].to_numpy()), table["label"].to_numpy()
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:216], order[216:]  # a third held out
    distances = ((vectors[test, None, :] - vectors[None, train, :]) ** 2).sum(axis=-1)
    accuracy = (labels[train][distances.argmin(axis=1)] == labels[test]).mean()
    assert accuracy >= 0.9
