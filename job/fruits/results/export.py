"""The phone export: a finished run as one TFLite graph, from a uint8 RGB photo to its `pca`
values (featurizer.tflite), and the same graph with a head that scores each label
(classifier.tflite), for LiteRT on a device: the run's own logistic head (fitted in the job,
`--classifier logistic`, the default where the run has one: its coefficients and intercepts
folded with the standardisation and the PCA into one Dense layer of logits, then softmax), or
a nearest centroid (`--classifier centroid`).

Everything the pipeline does after resizing is inside the graph: the backbone's input
normalisation, the CNN, the standardisation and the PCA projection (one matrix product, as
the job applies them). The caller only resizes the photo to the run's input size, as the
job's decoder does (fruits.featurize.decode).

The centroid head: one centroid per label in PCA space, fitted on the run's training rows (its
split column, or the seeded 70 % part that `fruitsctl evaluate` uses), scored by cosine
similarity or by negative squared Euclidean distance, whichever classifies the held-out
rows better. The export runs its files with LiteRT on the run's own images and records
what it finds (export.json): the featurizer against the run's `pca` column, and the
classifier's top-1 on the held-out rows.

Converting needs TensorFlow (the driver's side of the job); the exported files need only
LiteRT.
"""

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fruits import __version__, installed_versions
from fruits.featurize.backbone_model import build_checked, prepare_backbone
from fruits.featurize.decode import BadImage, decode_image
from fruits.featurize.runtimes import model_digest
from fruits.io.output import MODEL
from fruits.results.evaluate import split_rows
from fruits.results.run_results import RunResults, open_run
from fruits.runs.reuse import check_same_model
from fruits.settings.backbones import BACKBONES
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError
from fruits.write.head_files import LogisticWeights, load_logistic
from fruits.write.model_files import load_reduction

FEATURIZER, CLASSIFIER, LABELS, EXPORT_JSON = "featurizer.tflite", "classifier.tflite", "labels.txt", "export.json"
EXPORT_FILES = (FEATURIZER, CLASSIFIER, LABELS, EXPORT_JSON)
QUANTIZE = ("none", "dynamic", "int8")
CLASSIFIERS = ("logistic", "centroid", "none")
WARM_UP_PHOTOS = 5  # untimed calls before export.json's ms per photo
REPRESENTATIVE_IMAGES = 200  # int8 calibration: images drawn from the run's training rows
LOST_TOP1 = 0.02  # a phone model this far below the run's head gets a warning


@dataclass(frozen=True)
class Head:
    """Nearest centroid in PCA space: scores = cosine similarity, or -squared distance."""

    labels: list[str]
    centroids: np.ndarray  # (labels, k)
    metric: str  # "cosine" or "euclidean"

    def scores(self, pca: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            unit = pca / np.maximum(np.linalg.norm(pca, axis=1, keepdims=True), 1e-12)
            return unit @ _unit_rows(self.centroids).T
        return 2.0 * pca @ self.centroids.T - (self.centroids**2).sum(axis=1)[None, :] - (pca**2).sum(axis=1)[:, None]


@dataclass(frozen=True)
class LogisticHead:
    """The run's own logistic head (fitted in the job, fruits.fit.classifier): scores = softmax
    of the logits, the probability of each label."""

    weights: LogisticWeights
    metric: str = "logistic, softmax"

    @property
    def labels(self) -> list[str]:
        return self.weights.labels

    def scores(self, pca: np.ndarray) -> np.ndarray:
        logits = self.weights.logits(pca)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def fit_head(labels: np.ndarray, pca: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[Head, dict]:
    """Centroids of the training rows; the metric that classifies the test rows better."""
    names = sorted(set(labels[train]))
    centroids = np.stack([pca[train & (labels == name)].mean(axis=0) for name in names])
    accuracy = {}
    for metric in ("cosine", "euclidean"):
        head = Head(names, centroids, metric)
        predicted = np.asarray(names, dtype=object)[head.scores(pca[test]).argmax(axis=1)]
        accuracy[metric] = float((predicted == labels[test]).mean())
    best = max(accuracy, key=lambda metric: (accuracy[metric], metric == "cosine"))
    return Head(names, centroids, best), accuracy


def _graph(backbone, keras_model, reduction, image_size: int, head: Head | LogisticHead | None):
    """A Keras model: uint8 (1, S, S, 3) -> pca (1, k), or label scores (1, labels). Keras
    layers around the backbone, converted with from_keras_model as the job converts the
    backbone (a tf.function capturing a Keras 3 model converts to NaNs here)."""
    import keras

    image = keras.Input((image_size, image_size, 3), batch_size=1, dtype="uint8", name="image")
    x = keras.ops.cast(image, "float32")
    if backbone.bgr:
        x = keras.ops.flip(x, axis=-1)
    x = keras.layers.Rescaling(backbone.scale, offset=list(backbone.offset), name="normalise")(x)
    features = keras_model(x)
    if isinstance(head, LogisticHead):
        # standardise, PCA and logits are three affine maps in a row: one Dense layer of their
        # product (backbone width x labels) holds them all, smaller than the k-wide projection
        # and its head together and, quantized, rounded once instead of twice
        coefficients = head.weights.coefficients.T
        logits = keras.layers.Dense(len(head.labels), name="standardise_pca_and_logits")
        scores = keras.layers.Softmax(name="softmax")(logits(features))
        logits.set_weights(
            [
                (reduction.weights @ coefficients).astype(np.float32),
                (reduction.bias @ coefficients + head.weights.intercepts).astype(np.float32),
            ]
        )
        return keras.Model(image, scores, name="classifier")
    projection = keras.layers.Dense(reduction.k, name="standardise_and_pca")
    pca = projection(features)
    projection.set_weights([reduction.weights.astype(np.float32), reduction.bias.astype(np.float32)])
    if head is None:
        return keras.Model(image, pca, name="featurizer")
    centroids = head.centroids.astype(np.float32)
    scoring = keras.layers.Dense(len(head.labels), name=f"{head.metric}_to_centroids")
    if head.metric == "cosine":
        scores = scoring(keras.layers.UnitNormalization(name="unit")(pca))
        scoring.set_weights([_unit_rows(centroids).T, np.zeros(len(head.labels), np.float32)])
    else:  # -|p - c|^2 = 2 p.c - |c|^2 - |p|^2
        scores = scoring(pca) - keras.ops.sum(keras.ops.square(pca), axis=1, keepdims=True)
        scoring.set_weights([2 * centroids.T, -(centroids**2).sum(axis=1)])
    return keras.Model(image, scores, name="classifier")


def _convert(model, quantize: str, representative: list[np.ndarray]) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":  # weights and activations in int8, calibrated on the run's images
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
    return converter.convert()


class LiteModel:
    """One exported file on LiteRT, one image at a time (what a phone does)."""

    def __init__(self, content: bytes, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=content, num_threads=threads)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input, image[None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)[0].copy()


def _images(results: RunResults, rows: np.ndarray, size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The run's images at `rows`, decoded as the job decodes them; (rows read, images)."""
    paths = results.features.column("path").to_pylist()
    kept, images = [], []
    for row in rows:
        data = results.read_image(paths[row])
        try:
            image = decode_image(data, size) if data else None
        except BadImage:
            image = None
        if image is not None:
            kept.append(row)
            images.append(image)
    return np.asarray(kept, dtype=np.int64), images


def _refuse_unexportable(results: RunResults) -> None:
    config = results.manifest.get("config") or {}
    if config.get("runtime") == "tf":
        raise UserError(
            f"{results.uri!r} was made with --runtime tf: its features come from TensorFlow's kernels, "
            "the exported model runs TFLite's (parity is only checked for --runtime tflite runs); rerun "
            "it with --runtime tflite, then export."
        )


def _refuse_other_backbone(results: RunResults) -> None:
    """The export's graph holds the backbone the Keras way; its parity with the run's features
    is only meaningful when this installation converts the run's settings to the run's model."""
    settings = results.manifest.get("config") or {}
    if not results.run.model_sha256:
        return
    ours = prepare_backbone(
        JobConfig(
            backbone=settings.get("backbone", "mobilenet_v2"),
            weights=settings.get("weights", "imagenet"),
            image_size=int(settings.get("image_size", 96)),
            precision=settings.get("precision", "float32"),
        )
    )
    check_same_model(results.run, model_digest(ours) if ours else None, "export of")


def export_run(
    uri: str,
    to: Path,
    config: JobConfig,
    *,
    classifier: str | None = None,
    quantize: str | None = None,
    check: int = 256,
    overwrite: bool = False,
    seed: int = 0,
) -> dict:
    """Export the finished run at `uri` into the folder `to`; returns export.json's content.
    `check`: how many of the run's images the featurizer's parity is measured on (0: all).
    `classifier`: None: the run's logistic head where it has one, else the nearest centroid.
    `quantize`: None: the run's own arithmetic (int8 for an int8 run, see `default_quantize`)."""
    if classifier not in (None, *CLASSIFIERS) or quantize not in (None, *QUANTIZE):
        raise UserError(f"--classifier is one of {', '.join(CLASSIFIERS)} and --quantize one of {', '.join(QUANTIZE)}.")
    results = open_run(uri, config)
    _refuse_unexportable(results)
    _refuse_other_backbone(results)
    manifest, settings = results.manifest, results.manifest.get("config") or {}
    run_precision = settings.get("precision", "float32")
    quantize = quantize or default_quantize(run_precision)
    backbone, size = BACKBONES[manifest["backbone"]["name"]], int(manifest["backbone"]["image_size"])
    try:
        reduction = load_reduction(results.run.store, MODEL)
    except (FileNotFoundError, KeyError, ValueError):
        raise UserError(
            f"The run's model folder {uri.rstrip('/')}/{MODEL} is missing or incomplete: export needs "
            "the fitted scaler and PCA; rerun the job."
        ) from None
    logistic = load_logistic(results.run.store, MODEL)
    classifier = classifier or ("logistic" if logistic else "centroid")
    if classifier == "logistic" and logistic is None:
        raise UserError(
            f"{uri!r} has no classifier head (it was run with --classifier none, or before the job fitted "
            "one): export it with --classifier centroid, or rerun it with --classifier logistic."
        )
    _check_target(to, overwrite)

    labels = np.asarray(results.features.column("label").to_pylist(), dtype=object)
    splits = np.asarray(results.features.column("split").to_pylist(), dtype=object)
    pca = np.stack(results.features.column("pca").to_numpy(zero_copy_only=False)).astype(np.float64)
    train, test, how = split_rows(labels, splits, results.features.column("path").to_pylist(), seed)
    head: Head | LogisticHead | None = None
    head_accuracy: dict = {}
    if classifier == "centroid":
        head, head_accuracy = fit_head(labels, pca, train, test)
    elif classifier == "logistic" and logistic is not None:
        head = LogisticHead(logistic)
        predicted = np.asarray(head.labels, dtype=object)[head.scores(pca[test]).argmax(axis=1)]
        head_accuracy = {"softmax": float((predicted == labels[test]).mean())}

    rng = np.random.default_rng(seed)
    everything = np.arange(len(labels))
    checked, check_images = _images(
        results,
        everything if not check or check >= len(labels) else np.sort(rng.choice(everything, check, replace=False)),
        size,
    )
    if not len(checked):
        raise UserError(
            f"None of the run's input images can be read now (e.g. {results.features['path'][0]}): "
            "export measures its files on them; make them reachable (same paths, same S3 settings)."
        )
    representative: list[np.ndarray] = []
    if quantize == "int8":
        pool = np.flatnonzero(train)
        _, representative = _images(
            results, np.sort(rng.choice(pool, min(REPRESENTATIVE_IMAGES, len(pool)), replace=False)), size
        )

    keras_model = build_checked(backbone, size, settings.get("weights", "imagenet"), UserError)
    files: dict[str, bytes] = {}
    featurizer = _graph(backbone, keras_model, reduction, size, None)
    float_featurizer = _convert(featurizer, "none", [])
    files[FEATURIZER] = float_featurizer if quantize == "none" else _convert(featurizer, quantize, representative)
    parity = _featurizer_parity(files[FEATURIZER], float_featurizer, check_images, pca[checked])
    classifier_figures = None
    if head is not None:
        scorer = _graph(backbone, keras_model, reduction, size, head)
        files[CLASSIFIER] = _convert(scorer, quantize, representative)
        classifier_figures = _classifier_figures(
            results, files[CLASSIFIER], head, test, size, quantize, head_accuracy, lambda: _convert(scorer, "none", [])
        )
    warnings = arithmetic_warnings(classifier_figures, quantize, run_precision)
    files[LABELS] = ("\n".join(head.labels if head else sorted(set(labels))) + "\n").encode()
    description = {
        "format": "fruits-export/1",
        "run_id": manifest["run_id"],
        "run_output": uri,
        "backbone": manifest["backbone"]["name"],
        "input": {
            "shape": [1, size, size, 3],
            "dtype": "uint8",
            "colour": "RGB",
            "preprocessing": f"resize the photo to {size}x{size} RGB (the job's decoder: EXIF orientation "
            "applied, transparency on white, bilinear); everything else is in the graph",
        },
        "outputs": {
            FEATURIZER: f"pca: float32 [1, {reduction.k}]",
            **(
                {
                    CLASSIFIER: f"scores: float32 [1, {len(head.labels)}], one per line of {LABELS}, higher is "
                    f"more likely ({head.metric})"
                }
                if head
                else {}
            ),
        },
        "k": reduction.k,
        "labels": head.labels if head else sorted(set(labels)),
        "quantize": quantize,
        # the run's backbone arithmetic: an int8 run's features differ from this float graph's by
        # the quantization's noise (featurizer_parity shows how much)
        "run_precision": run_precision,
        "split": how,
        "classifier_kind": classifier,
        "featurizer_parity": parity,
        "classifier": classifier_figures,
        "file_bytes": {name: len(data) for name, data in files.items()},
        "warnings": warnings,
        "versions": _versions(),
    }
    files[EXPORT_JSON] = json.dumps(description, indent=2, ensure_ascii=False).encode()
    _write(to, files)
    return description


def arithmetic_warnings(figures: dict | None, quantize: str, run_precision: str) -> list[str]:
    """A phone model that labels the held-out photos clearly worse than the run's head does on
    the run's own features: said in one sentence, with the likely fix when the arithmetics differ."""
    if not figures or not figures["top1_on_the_runs_pca"]:
        return []
    on_the_run = max(figures["top1_on_the_runs_pca"].values())
    if figures["top1"] >= on_the_run - LOST_TOP1:
        return []
    fix = (
        f" (the run's backbone is {run_precision}, this export {quantize}: export with --quantize "
        f"{default_quantize(run_precision)}, or rerun with --precision {'int8' if quantize == 'int8' else 'float32'})"
        if quantize != default_quantize(run_precision)
        else ""
    )
    return [
        f"The exported classifier labels {figures['top1']:.1%} of the held-out photos right, the run's head "
        f"{on_the_run:.1%} on the run's features{fix}."
    ]


def default_quantize(run_precision: str) -> str:
    """The export's arithmetic when none is asked for: the run's. A head fitted on an int8
    backbone's features expects that backbone's noise: on Fruits-360's 41,322 training images at
    224 px, such a head scored 0.970 top-1 through an int8 export and 0.913 through a float one."""
    return "int8" if run_precision == "int8" else "none"


def _featurizer_parity(content: bytes, float_content: bytes, images: list[np.ndarray], expected: np.ndarray) -> dict:
    def run_all(model_content: bytes) -> np.ndarray:
        model = LiteModel(model_content)  # one interpreter for all the images
        return np.stack([model(image) for image in images]).astype(np.float64)

    difference = np.abs(run_all(content) - expected)
    figures = {
        "images": len(images),
        "max_abs_diff": float(difference.max()),
        "max_abs_pca": float(np.abs(expected).max()),
        "mean_abs_diff": float(difference.mean()),
    }
    if content is not float_content:
        figures["float_max_abs_diff"] = float(np.abs(run_all(float_content) - expected).max())
    return figures


def _classifier_figures(
    results,
    content: bytes,
    head: Head | LogisticHead,
    test: np.ndarray,
    size: int,
    quantize: str,
    head_accuracy: dict,
    float_content,
) -> dict:
    rows, images = _images(results, np.flatnonzero(test), size)
    labels = np.asarray(results.features.column("label").to_pylist(), dtype=object)[rows]
    names = np.asarray(head.labels, dtype=object)

    def top1(model_content: bytes) -> tuple[float, float]:
        """(top-1, ms per photo): one thread, one photo at a time, as a phone runs it."""
        model = LiteModel(model_content)
        for image in images[:WARM_UP_PHOTOS]:  # XNNPACK packs the weights on the first calls
            model(image)
        started = time.perf_counter()
        predicted = [int(model(image).argmax()) for image in images]
        ms = (time.perf_counter() - started) * 1000 / max(len(images), 1)
        return float((names[predicted] == labels).mean()), ms

    accuracy, ms = top1(content)
    figures = {
        "metric": head.metric,
        "test_images": len(images),
        "top1": round(accuracy, 4),
        "ms_per_photo_one_thread": round(ms, 2),  # this machine's CPU: a phone's differs, the ratios hold
        "top1_on_the_runs_pca": {metric: round(value, 4) for metric, value in head_accuracy.items()},
    }
    if quantize != "none":
        figures["top1_float"] = round(top1(float_content())[0], 4)
    return figures


def _check_target(to: Path, overwrite: bool) -> None:
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {str(to)!r} is a file: give a folder for the exported files.")
    present = sorted(entry.name for entry in to.iterdir()) if to.is_dir() else []
    foreign = [name for name in present if name not in EXPORT_FILES]
    if foreign:
        raise UserError(
            f"--to {str(to)!r} holds other files ({', '.join(foreign[:5])}): export never replaces them; "
            "choose a new or empty folder."
        )
    if present and not overwrite:
        raise UserError(
            f"--to {str(to)!r} already holds an export: pass --overwrite to replace it, or choose another folder."
        )


def _write(to: Path, files: dict[str, bytes]) -> None:
    """Each file written whole (a temporary name, then renamed); export.json last."""
    to.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda name: name == EXPORT_JSON):
        handle, temporary = tempfile.mkstemp(dir=to, prefix=f".{name}.")
        with os.fdopen(handle, "wb") as stream:
            stream.write(files[name])
        os.replace(temporary, to / name)
    if CLASSIFIER not in files and (to / CLASSIFIER).exists():
        (to / CLASSIFIER).unlink()  # an earlier export's head would not match


def _versions() -> dict:
    return {
        "fruits": __version__,
        "python": platform.python_version(),
        **installed_versions("tensorflow", "tensorflow-cpu", "ai-edge-litert"),
    }
