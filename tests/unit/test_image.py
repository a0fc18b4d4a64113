"""images/Dockerfile: lint clean, and built from the same definitions as everything else."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from fruits.cluster.cluster_config import JOB_FILE, SPARK_UID, spark_version
from fruits.settings.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "images" / "Dockerfile").read_text()


def arg(name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, flags=re.M).group(1)


def test_hadolint_is_clean():
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--config", str(ROOT / "images" / ".hadolint.yaml"), str(ROOT / "images" / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_spark_version_agrees_with_the_pyspark_pin_and_the_chart():
    pin = re.search(r'"pyspark==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    chart = yaml.safe_load((ROOT / "charts" / "fruits-pipeline" / "values.yaml").read_text())["sparkVersion"]
    assert arg("SPARK_VERSION") == pin == spark_version() == chart
    assert arg("BASE_IMAGE") == "localhost/spark-base:${SPARK_VERSION}"  # make spark-base's tag, as the Makefile's
    makefile = (ROOT / "Makefile").read_text()
    assert (
        "SPARK_BASE := localhost/spark-base:$(SPARK_VERSION)" in makefile and "BASE_IMAGE ?= $(SPARK_BASE)" in makefile
    )
    assert DOCKERFILE.count("FROM ${BASE_IMAGE}") == 2  # build and runtime stages, real base or stand-in


def test_the_baked_weights_are_for_the_default_image_size():
    assert arg("IMAGE_SIZE") == str(DEFAULTS.image_size)


def test_the_image_bakes_weights_and_model_where_the_job_looks_for_them():
    from fruits.featurize.runtimes import BAKED_DIR_ENV
    from fruits.settings.backbones import WEIGHTS_DIR_ENV

    assert re.search(
        r"python -m fruits.featurize.runtimes\s+\\\s+--image-size \"\$\{IMAGE_SIZE\}\" --weights-dir "
        r"/opt/fruits/weights --tflite-dir /opt/fruits/tflite",
        DOCKERFILE,
    )
    lean, tf = stage("runtime") + stage("lean"), stage("runtime") + stage("tf")
    assert "COPY --from=tf-build /opt/fruits/tflite /opt/fruits/tflite" in stage("runtime")  # both images
    assert f"{BAKED_DIR_ENV}=/opt/fruits/tflite" in stage("runtime")
    assert "COPY --from=tf-build /opt/fruits/weights /opt/fruits/weights" in tf and "/opt/fruits/weights" not in lean
    assert f"{WEIGHTS_DIR_ENV}=/opt/fruits/weights" in tf


def stage(name: str) -> str:
    """The instructions of one stage of images/Dockerfile."""
    stages = re.split(r"^(?=FROM )", DOCKERFILE, flags=re.M)
    (found,) = [text for text in stages if re.match(rf"FROM \S+ AS {name}\n", text)]
    return found


def test_the_tf_image_is_the_lean_image_s_layers_plus_tensorflow():
    assert stage("tf").startswith("FROM runtime AS tf") and stage("lean").startswith("FROM runtime AS lean")
    assert DOCKERFILE.rstrip().endswith(stage("lean").rstrip())  # the default target: the last stage
    assert "requirements-tf.lock" not in stage("build")  # the lean venv: requirements.lock alone
    assert "requirements-tf.lock" in stage("tf-deps") and "--target /opt/fruits/tf" in stage("tf-deps")
    assert "COPY job" not in stage("tf-deps")  # TensorFlow's layer survives code changes
    assert "COPY --from=tf-deps /opt/fruits/tf/ /opt/fruits/venv/lib/python3.11/site-packages/" in stage("tf")
    assert "COPY --from=tf-deps /opt/fruits/tf/ " not in stage("runtime") + stage("lean")


def test_the_lean_image_names_the_tf_image_and_the_tf_image_names_none():
    from fruits.cluster.cluster_config import ClusterConfig
    from fruits.cluster.spark_application import image_for
    from fruits.featurize.backbone_model import TF_IMAGE_ENV
    from fruits.settings.config import build_config

    assert f"ENV {TF_IMAGE_ENV}=${{TF_IMAGE}}" in stage("lean")
    assert TF_IMAGE_ENV not in stage("tf") + stage("runtime")
    # the build argument's default is the image fruitsctl and the chart pick for --runtime tf
    assert arg("TF_IMAGE") == image_for(build_config({"runtime": "tf"}), ClusterConfig())
    assert "--build-arg TF_IMAGE=$(IMAGE_TF)" in (ROOT / "Makefile").read_text()


def test_python_dependencies_and_jars_come_from_the_project_definitions():
    assert "COPY requirements.lock /src/" in DOCKERFILE  # the lock of pyproject.toml's pins, nothing restated
    assert "pip install --no-cache-dir --progress-bar off --require-hashes -r /src/requirements.lock" in DOCKERFILE
    assert DOCKERFILE.index("requirements.lock") < DOCKERFILE.index("COPY job /src/job")  # deps before code
    pins = re.findall(r"pip install[^\n]*?([\w-]+)==", DOCKERFILE)
    assert pins == ["pip"]  # only the installer itself is pinned here
    assert "python -m fruits.io.s3a_jars" in DOCKERFILE  # the SHA-256-verified jars the tests use


def test_runs_as_the_spark_user_with_the_job_where_manifests_point():
    assert DOCKERFILE.rstrip().splitlines()[-2:] == [f"USER {SPARK_UID}", "WORKDIR /opt/spark/work-dir"]
    assert f"COPY job/main.py {JOB_FILE.removeprefix('local://')}" in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text()
    assert ignored.splitlines()[1] == "*" and "!job/" in ignored and "!.cache/image-inputs/" in ignored
