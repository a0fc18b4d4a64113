"""Bad and odd input: every case ends in an error row or a clear UserError, never a crash."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from fruits.io.output import IN_PROGRESS
from fruits.pipeline import run_job
from fruits.settings.config import build_config
from fruits.settings.errors import UserError
from support.image_files import odd_files, write_files

ODD_LABEL, GOOD_LABEL = "Pomme été", "Crème brûlée"


def copy_sample_images(sample_dir, target, count, start=0):
    target.mkdir(parents=True, exist_ok=True)
    for image in sorted((sample_dir / "Kiwi").glob("*.jpg"))[start : start + count]:
        shutil.copy(image, target / image.name)


@pytest.fixture(scope="module")
def odd_dataset(tmp_path_factory, sample_dir):
    """Training/Test splits, labels with spaces and accents, every odd file kind in one folder."""
    root = tmp_path_factory.mktemp("odd") / "dataset"
    write_files(root / "Training" / ODD_LABEL, {name: data for name, (data, _) in odd_files().items()})
    copy_sample_images(sample_dir, root / "Training" / GOOD_LABEL, 6)
    copy_sample_images(sample_dir, root / "Test" / GOOD_LABEL, 3, start=6)
    (root / "Training" / GOOD_LABEL / "notes.txt").write_text("not picked up: not an image extension")
    return root


def config_for(input_path, output, weights, **extra):
    return build_config(
        {
            "input": str(input_path),
            "output": str(output),
            "weights": weights,
            "image_size": 96,
            "k": 3,
            "classifier": "none",
            **extra,
        }
    )


@pytest.fixture(scope="module")
def odd_run(spark, odd_dataset, weights, tmp_path_factory):
    output = tmp_path_factory.mktemp("odd-out") / "out"
    manifest = run_job(spark, config_for(odd_dataset, output, weights))
    features = pq.read_table(output / "features").to_pandas()
    errors = pq.read_table(output / "errors").to_pandas()
    by_name = {path.rsplit("/", 1)[1]: row for path, row in zip(errors["path"], errors.to_dict("records"))}
    return output, manifest, features, by_name


def featurized_names(odd_run):
    return {path.rsplit("/", 1)[1] for path in odd_run[2]["path"]}


@pytest.mark.parametrize(
    "name, reason",
    [
        ("zero_bytes.jpg", "empty file (0 bytes)"),
        ("truncated.jpg", "corrupt image"),
        ("text.jpg", "not an image"),
        ("absurd.png", "absurd dimensions 100000x100000"),
    ],
)
def test_unusable_file_becomes_an_error_row_with_its_reason(odd_run, name, reason):
    errors = odd_run[3]
    assert reason in errors[name]["error"]
    assert errors[name]["label"] == ODD_LABEL and errors[name]["split"] == "Training"
    assert name not in featurized_names(odd_run)


@pytest.mark.parametrize(
    "name", ["grayscale.jpg", "cmyk.jpg", "rgba.png", "palette.png", "sixteen_bit.png", "UPPER.JPG", "large_photo.jpeg"]
)
def test_odd_but_valid_image_is_featurized(odd_run, name):
    assert name in featurized_names(odd_run)


def test_manifest_counts_the_failures(odd_run):
    _, manifest, features, errors = odd_run
    assert manifest["counts"] == {
        "read": 20,
        "ok": 16,
        "failed": 4,
        "skipped": {"not an image (extension)": 1},
        "read_retries": 0,
    }
    assert len(features) == 16 and len(errors) == 4


def test_labels_keep_spaces_and_accents_and_splits_are_recorded(odd_run):
    _, manifest, features, _ = odd_run
    assert manifest["labels"] == {GOOD_LABEL: 9, ODD_LABEL: 7}
    assert manifest["splits"] == {"Test": 3, "Training": 13}
    assert set(features.loc[features["split"] == "Test", "label"]) == {GOOD_LABEL}


def test_non_image_extensions_are_not_read(odd_run):
    assert not any(path.endswith("notes.txt") for path in odd_run[2]["path"])


def test_missing_input_path(spark, tmp_path, weights):
    with pytest.raises(UserError, match="does not exist: check --input"):
        run_job(spark, config_for(tmp_path / "nowhere", tmp_path / "out", weights))
    assert not (tmp_path / "out").exists()


def test_empty_folder(spark, tmp_path, weights):
    (tmp_path / "empty" / "Apple").mkdir(parents=True)
    (tmp_path / "empty" / "Apple" / "readme.md").write_text("no images here")
    with pytest.raises(UserError, match="No image files"):
        run_job(spark, config_for(tmp_path / "empty", tmp_path / "out", weights))
    assert not (tmp_path / "out").exists()


def test_nothing_decodable_fails_without_a_manifest_but_keeps_the_reasons(spark, tmp_path, weights):
    write_files(tmp_path / "in" / "Junk", {"a.jpg": b"", "b.jpg": b"not an image"})
    with pytest.raises(UserError, match="Only 0 of 2 images could be decoded") as failed:
        run_job(spark, config_for(tmp_path / "in", tmp_path / "out", weights, run_id="junk"))
    assert not (tmp_path / "out" / "manifest.json").exists() and not (tmp_path / "out" / "errors").exists()
    reasons = tmp_path / "out" / "_staging" / "junk" / "errors"
    assert str(failed.value).endswith(f"the reasons are in {reasons}.")
    assert len(pq.read_table(reasons)) == 2


def test_a_finished_output_is_never_silently_overwritten(spark, odd_run, odd_dataset, weights):
    output, manifest, _, _ = odd_run
    with pytest.raises(UserError, match="already holds a finished run: pass --overwrite"):
        run_job(spark, config_for(odd_dataset, output, weights))
    assert json.loads((output / "manifest.json").read_text())["run_id"] == manifest["run_id"]


def test_a_foreign_folder_is_not_taken_over(spark, odd_dataset, tmp_path, weights):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match=r"holds entries this job did not write \('thesis.tex'\)"):
        run_job(spark, config_for(odd_dataset, tmp_path, weights))
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_output_of_a_dead_run_is_replaced_and_overwrite_replaces_a_finished_one(spark, tmp_path, sample_dir, weights):
    source = tmp_path / "in"
    copy_sample_images(sample_dir, source / "Kiwi", 4)
    output = tmp_path / "out"
    output.mkdir()
    (output / IN_PROGRESS).write_text("{}")
    (output / "features").mkdir()
    (output / "features" / "part-0-stale.parquet").write_text("half-written")
    first = run_job(spark, config_for(source, output, weights, k=2))
    assert not (output / "features" / "part-0-stale.parquet").exists()
    second = run_job(spark, config_for(source, output, weights, k=2, overwrite=True))
    assert second["run_id"] != first["run_id"]
    assert json.loads((output / "manifest.json").read_text())["run_id"] == second["run_id"]
    assert len(pq.read_table(output / "features")) == 4


def test_imagenet_weights_without_internet_say_how_to_proceed(spark, tmp_path, sample_dir, monkeypatch):
    source = tmp_path / "in"
    copy_sample_images(sample_dir, source / "Kiwi", 2)
    # A fresh Keras cache, so that no previously downloaded file can hide the missing network,
    # and no network whatever this machine has: downloads go through a proxy that refuses them.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    for proxy in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    for bypass in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(bypass, raising=False)
    config = build_config(
        {"input": str(source), "output": str(tmp_path / "out"), "image_size": 96, "k": 1, "backbone": "vgg16"}
    )
    with pytest.raises(UserError, match=r"Could not get the ImageNet weights for vgg16 .* pass --weights PATH"):
        run_job(spark, config)
    assert not (tmp_path / "out").exists()  # nothing written, nothing left behind
