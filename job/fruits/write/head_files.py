"""Write: the classifier head as the model's last stages, after the scaler and PCA: the
logistic regression (`prediction`, an index) and an IndexToString (`predicted_label`, the
label's name), so that `PipelineModel.load(OUTPUT/model).transform(images)` names the fruit.

Each is saved by Spark ML's own writer into the stage folder PipelineModel.load expects
(`stages/<index>_<uid>`); model_files writes the pipeline's metadata naming their uids.
A run that applies an earlier run's model copies that run's head stages unchanged.
"""

import json
from dataclasses import dataclass

import numpy as np
import pyarrow.fs as pafs

from fruits.fit.classifier import PREDICTION, Head
from fruits.io.storage import Store
from fruits.write.manifest import ClassifierRecord
from fruits.write.model_files import dense_matrix, dense_vector, stage_row

PREDICTED_LABEL = "predicted_label"
FIRST_HEAD_STAGE = 2  # stages 0 and 1 are the scaler and the PCA


def stage_folder(folder: str, index: int, uid: str) -> str:
    return f"{folder}/stages/{index}_{uid}"


def save_head(head: Head, store: Store, folder: str) -> list[str]:
    """The head's stages saved under store/folder/stages; returns their uids in order."""
    from pyspark.ml.feature import IndexToString

    names = IndexToString(inputCol=PREDICTION, outputCol=PREDICTED_LABEL, labels=head.labels)
    uids = []
    for index, stage in enumerate((head.model, names), start=FIRST_HEAD_STAGE):
        stage.write().save(store.uri_of(store.path(stage_folder(folder, index, stage.uid))))
        uids.append(stage.uid)
    return uids


def head_stages(store: Store, folder: str) -> list[tuple[int, str]]:
    """(index, uid) of the head stages saved under store/folder, in order."""
    found = []
    for name, kind in store.children(f"{folder}/stages").items():
        index, _, uid = name.partition("_")
        if kind == pafs.FileType.Directory and index.isdigit() and int(index) >= FIRST_HEAD_STAGE:
            found.append((int(index), uid))
    return sorted(found)


def copy_head(source: Store, source_folder: str, target: Store, folder: str) -> list[str]:
    """An earlier run's head stages copied file by file into store/folder; returns their uids."""
    uids = []
    for index, uid in head_stages(source, source_folder):
        stage = stage_folder(source_folder, index, uid)
        for path in source.file_list(stage):
            target.write_bytes(f"{stage_folder(folder, index, uid)}/{path[len(stage) + 1 :]}", source.read_bytes(path))
        uids.append(uid)
    return uids


def head_record(head: Head, fit_s: float) -> ClassifierRecord:
    """The manifest's classifier record of a head fitted in this run."""
    return ClassifierRecord(
        kind="logistic",
        labels=len(head.labels),
        label_names=head.labels,
        reg_param=head.reg_param,
        held_out_top1_by_reg_param=head.grid,
        held_out_top1=head.held_out_top1,
        split=head.split,
        train_rows=head.train_rows,
        test_rows=head.test_rows,
        fit_s=round(fit_s, 3),
    )


@dataclass(frozen=True)
class LogisticWeights:
    """A saved logistic head read back without Spark: logits = pca @ coefficients.T + intercepts."""

    labels: list[str]
    coefficients: np.ndarray  # (labels, k)
    intercepts: np.ndarray  # (labels,)

    def logits(self, pca: np.ndarray) -> np.ndarray:
        return pca @ self.coefficients.T + self.intercepts


def load_logistic(store: Store, folder: str) -> LogisticWeights | None:
    """The logistic head saved under store/folder (stage 2, its label names from stage 3), with
    pyarrow alone; None when the model has no head."""
    stages = dict(head_stages(store, folder))
    if FIRST_HEAD_STAGE not in stages or FIRST_HEAD_STAGE + 1 not in stages:
        return None
    row = stage_row(store, stage_folder(folder, FIRST_HEAD_STAGE, stages[FIRST_HEAD_STAGE]))
    names = stage_folder(folder, FIRST_HEAD_STAGE + 1, stages[FIRST_HEAD_STAGE + 1])
    metadata = json.loads(store.read_bytes(f"{names}/metadata/part-00000").decode().splitlines()[0])
    return LogisticWeights(
        list(metadata["paramMap"]["labels"]),
        dense_matrix(row["coefficientMatrix"]),
        dense_vector(row["interceptVector"]),
    )
