"""A self-contained HTML report of a finished run: counts, errors, timings, variance, PCA views.

Plots are matplotlib SVGs inlined in the page and thumbnails are data URIs, so the one
file can be mailed or attached to a ticket.
"""

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from fruits.results.run_results import RunResults

MAX_SCATTER_POINTS = 5_000
THUMBNAILS_PER_LABEL = 4
LEGEND_LABELS = 20  # tab20's distinct colours: beyond, each label's name is written at its centre
PANEL_COLUMNS = 9  # the per-label view's grid (81 labels: 9 x 9)


def _svg(figure) -> str:
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):  # text stays text: a browser finds a label's name
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _colours(labels: list[str]) -> dict[str, tuple]:
    # the tab20* maps are ListedColormaps, which have .colors; get_cmap is typed as a plain Colormap
    palette = plt.get_cmap("tab20").colors + plt.get_cmap("tab20b").colors + plt.get_cmap("tab20c").colors  # type: ignore[attr-defined]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def scree_plot(explained: list[float], k: int, target: float | None) -> str:
    shown = min(len(explained), max(k + 20, 30))
    values = np.asarray(explained[:shown])
    cumulative = np.cumsum(explained)[:shown]
    figure, left = plt.subplots(figsize=(8, 4))
    left.bar(np.arange(1, shown + 1), values, color="#7aa6c2", label="explained variance per component")
    left.set_xlabel("principal component")
    left.set_ylabel("explained variance ratio")
    right = left.twinx()
    right.plot(np.arange(1, shown + 1), cumulative, color="#c0392b", label="cumulative")
    right.set_ylim(0, 1.02)
    right.set_ylabel("cumulative explained variance")
    right.axvline(k, color="black", linestyle="--", linewidth=1)
    right.annotate(
        f"k = {k} ({cumulative[min(k, shown) - 1]:.1%})", (k, 0.05), xytext=(5, 0), textcoords="offset points"
    )
    if target:
        right.axhline(target, color="grey", linestyle=":", linewidth=1)
    figure.legend(loc="upper center", ncol=2, frameon=False)
    return _svg(figure)


def _drawn(pca: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points a scatter draws: all, or a fixed random MAX_SCATTER_POINTS of them."""
    if len(pca) <= MAX_SCATTER_POINTS:
        return pca, labels
    keep = np.random.default_rng(0).choice(len(pca), MAX_SCATTER_POINTS, replace=False)
    return pca[keep], labels[keep]


def scatter_views(pca: np.ndarray, labels: np.ndarray) -> tuple[str, str]:
    """(2-D scatter of PC1/PC2, pairwise grid of PC1..PC3), coloured by label."""
    pca, labels = _drawn(pca, labels)
    names = sorted(set(labels))
    colours = _colours(names)
    figure, axis = plt.subplots(figsize=(9, 7))
    for name in names:
        rows = labels == name
        axis.scatter(
            pca[rows, 0],
            pca[rows, 1] if pca.shape[1] > 1 else np.zeros(rows.sum()),
            s=10,
            color=colours[name],
            label=name,
            alpha=0.8,
        )
    axis.set_xlabel("PC1")
    axis.set_ylabel("PC2")
    if len(names) <= LEGEND_LABELS:
        axis.legend(fontsize=7, markerscale=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    else:  # more labels than distinct colours: a legend could not tell them apart, names can
        _name_centres(axis, pca, labels, names)
    scatter = _svg(figure)

    dims = min(3, pca.shape[1])
    figure, axes = plt.subplots(dims, dims, figsize=(8, 8), squeeze=False)
    for i in range(dims):
        for j in range(dims):
            axis = axes[i][j]
            if i == j:
                axis.hist(pca[:, i], bins=30, color="#95a5a6")
            else:
                for name in names:
                    rows = labels == name
                    axis.scatter(pca[rows, j], pca[rows, i], s=3, color=colours[name])
            if i == dims - 1:
                axis.set_xlabel(f"PC{j + 1}")
            if j == 0:
                axis.set_ylabel(f"PC{i + 1}")
    return scatter, _svg(figure)


def _name_centres(axis: Any, pca: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    """Each label's name at the median of its points, on a pale box so that it reads over them."""
    box = {"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7}
    for name in names:
        rows = labels == name
        x = float(np.median(pca[rows, 0]))
        y = float(np.median(pca[rows, 1])) if pca.shape[1] > 1 else 0.0
        axis.annotate(name, (x, y), fontsize=6, ha="center", va="center", bbox=box)


def per_label_panels(pca: np.ndarray, labels: np.ndarray) -> str:
    """One small PC1/PC2 panel per label, its points in colour over every image's density in
    grey: where each fruit lies and what it overlaps, whatever the number of labels."""
    pca, labels = _drawn(pca, labels)
    names = sorted(set(labels))
    y = pca[:, 1] if pca.shape[1] > 1 else np.zeros(len(pca))
    density, x_edges, y_edges = np.histogram2d(pca[:, 0], y, bins=60)
    extent = (x_edges[0], x_edges[-1], y_edges[0], y_edges[-1])
    columns = min(PANEL_COLUMNS, len(names))
    lines = -(-len(names) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(1.3 * columns, 1.35 * lines), squeeze=False)
    for axis in axes.flat[len(names) :]:
        axis.set_axis_off()
    for axis, name in zip(axes.flat, names):
        axis.imshow(np.log1p(density.T), origin="lower", extent=extent, aspect="auto", cmap="Greys", alpha=0.5)
        rows = labels == name
        axis.scatter(pca[rows, 0], y[rows], s=2, color="#c0392b", linewidths=0)
        axis.set_title(name, fontsize=6, pad=2)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_xlim(extent[0], extent[1])
        axis.set_ylim(extent[2], extent[3])
    figure.subplots_adjust(wspace=0.05, hspace=0.35)
    return _svg(figure)


def _bar_table(header: list[str], rows: Sequence[Sequence[Any]], value: int) -> str:
    """A table whose last column draws row[value] as a bar: the figures and their picture once."""
    largest = max((float(row[value]) for row in rows), default=0.0) or 1.0
    bar = "<span class='track'><span class='bar' style='width:{:.1f}%'></span></span>"
    return _table([*header, ""], [[*row, Markup(bar.format(100 * float(row[value]) / largest))] for row in rows])


class Markup(str):
    """HTML that _table puts in a cell as it is (the report's own, never a file's text)."""


def _cell(value: Any) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))


def _table(header: list[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _thumbnail(data: bytes) -> str | None:
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.thumbnail((96, 96))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def thumbnails(results: RunResults, paths: np.ndarray, labels: np.ndarray) -> str:
    rows = []
    for label in sorted(set(labels)):
        images = []
        for path in paths[labels == label][:THUMBNAILS_PER_LABEL]:
            data = results.read_image(str(path))
            uri = _thumbnail(data) if data else None
            if uri:
                images.append(f'<img src="{uri}" alt="{html.escape(str(path))}" title="{html.escape(str(path))}">')
        if images:
            rows.append(f"<div class='thumbs'><b>{html.escape(label)}</b>{''.join(images)}</div>")
    return "".join(rows) or "<p>The input images cannot be reached from here, so no thumbnails.</p>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}section{margin-bottom:2.5em}svg{max-width:100%;height:auto}
.track{display:inline-block;width:260px}.bar{display:block;height:.8em;background:#7aa6c2;min-width:1px}
.thumbs{margin:4px 0}.thumbs b{display:inline-block;width:180px}.thumbs img{margin-right:4px;vertical-align:middle}
"""


def head_summary(record: dict | None) -> str:
    if not record:
        return "none (--classifier none, or too few labels or rows to hold some out)"
    return (
        f"{record['kind']} over {record['labels']} labels, regParam {record['reg_param']:g}: "
        f"held-out top-1 {record['held_out_top1']:.1%} on {record['test_rows']} images ({record['split']})"
    )


def label_table(counts: dict[str, int], table: dict, evaluation: dict | None) -> str:
    """Per label: its images, per split, a bar, and evaluate's held-out accuracy when given."""
    per_split = Counter(zip(table["label"], table["split"]))
    split_names = sorted({s for s in table["split"] if s is not None})
    scores = (evaluation or {}).get("per_class", {})
    header = ["label", *split_names, *(["1-NN held-out top-1"] if scores else []), "images"]
    rows = []
    for label, images in counts.items():
        score = scores.get(label, {}).get("accuracy")
        accuracy = [f"{score:.1%}" if score is not None else "-"] if scores else []
        rows.append([label, *[per_split.get((label, s), 0) for s in split_names], *accuracy, images])
    return _bar_table(header, rows, len(header) - 1)


def build_report(results: RunResults, evaluation: dict | None = None) -> str:
    m = results.manifest
    table = results.features.to_pydict()
    labels = np.asarray(table["label"], dtype=object)
    paths = np.asarray(table["path"], dtype=object)
    pca = np.stack(table["pca"]).astype(np.float32) if len(labels) else np.zeros((0, 2))
    counts, backbone, reduction = m["counts"], m["backbone"], m["pca"]

    sections = []
    summary = [
        ["run", m["run_id"]],
        ["input", m["input"]],
        ["output", m["output"]],
        ["images read / featurized / failed", f"{counts['read']} / {counts['ok']} / {counts['failed']}"],
        [
            "backbone",
            f"{backbone['name']} @ {backbone['image_size']}px, {backbone['feature_dim']}-d, "
            f"weights {backbone['weights']}",
        ],
        ["PCA", f"k = {reduction['k']}, variance kept {reduction['variance_kept']:.2%}"],
        ["classifier head", head_summary(m.get("classifier"))],
        ["wall time", f"{m['timings_s']['total']:.1f} s"],
        [
            "cost",
            f"{m['cost']['core_seconds_per_1000_images']} featurize core-seconds per 1 000 images (task time x cores)",
        ],
    ]
    sections.append(("Summary", _table(["", ""], summary)))

    sections.append(("Images per label and split", label_table(m["labels"], table, evaluation)))

    errors = results.errors.to_pydict()
    if errors["path"]:
        reasons = Counter(reason.split(":")[0] for reason in errors["error"])
        error_html = _table(["reason", "files"], [[r, n] for r, n in reasons.most_common()]) + _table(
            ["path", "label", "error"], list(zip(errors["path"], errors["label"], errors["error"]))[:200]
        )
    else:
        error_html = "<p>No errors: every file was decoded.</p>"
    sections.append(("Errors", error_html))

    stages = [[stage, seconds] for stage, seconds in m["timings_s"].items() if stage != "total"]
    total = Markup(f"<p>{m['timings_s']['total']:.1f} s in all.</p>")
    sections.append(("Timings per stage", _bar_table(["stage", "seconds"], stages, 1) + total))
    sections.append(
        (
            "Explained variance (scree plot)",
            scree_plot(reduction["explained_variance"], reduction["k"], reduction.get("variance_target")),
        )
    )
    scatter, pairs = scatter_views(pca, labels)
    sections.append(("PCA: first two components", scatter))
    sections.append(("PCA: components 1-3 pairwise", pairs))
    sections.append(("PCA: each label against the rest", per_label_panels(pca, labels)))
    sections.append(("Example images", thumbnails(results, paths, labels)))
    if evaluation:
        confused = [[c["true"], c["predicted"], c["count"]] for c in evaluation["most_confused"]]
        sections.append(
            (
                "Evaluation",
                f"<p>{html.escape(evaluation['classifier'])}, {html.escape(evaluation['split'])}: "
                f"<b>accuracy {evaluation['accuracy']:.1%}</b> on {evaluation['test_images']} test images.</p>"
                + _table(["true", "predicted as", "count"], confused),
            )
        )

    body = "".join(f"<section><h2>{html.escape(title)}</h2>{content}</section>" for title, content in sections)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Fruits! run {html.escape(m['run_id'])}</title>"
        f"<style>{STYLE}</style></head><body><h1>Fruits! run {html.escape(m['run_id'])}</h1>{body}</body></html>"
    )
