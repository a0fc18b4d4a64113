"""The report's views stay readable at many labels: 81 fruits get names, not 81 colours."""

import re

import numpy as np

from fruits.results.report import LEGEND_LABELS, label_table, per_label_panels, scatter_views


def clusters(labels: int, per_label: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10, size=(labels, 3))
    names = np.asarray([f"Fruit {i:02d}" for i in range(labels)], dtype=object)
    pca = np.concatenate([centre + rng.normal(size=(per_label, 3)) for centre in centres]).astype(np.float32)
    return pca, np.repeat(names, per_label)


def texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_many_labels_are_named_at_their_centres_instead_of_a_legend():
    pca, labels = clusters(81)
    scatter, _ = scatter_views(pca, labels)
    written = texts(scatter)
    assert all(f"Fruit {i:02d}" in written for i in range(81))
    assert '<g id="legend_1">' not in scatter


def test_few_labels_keep_a_legend():
    pca, labels = clusters(LEGEND_LABELS)
    scatter, _ = scatter_views(pca, labels)
    assert '<g id="legend_1">' in scatter and texts(scatter).count("Fruit 00") == 1


def test_each_label_has_a_panel_of_its_own():
    pca, labels = clusters(81, per_label=10)
    panels = per_label_panels(pca, labels)
    assert [t for t in texts(panels) if t.startswith("Fruit")] == [f"Fruit {i:02d}" for i in range(81)]
    assert panels.count("<image ") == 81  # every image's density under each label's points


def test_the_label_table_says_each_count_once_with_its_bar_and_held_out_score():
    counts = {"Apple": 40, "Kiwi": 10}
    table = {"label": ["Apple"] * 40 + ["Kiwi"] * 10, "split": ["Training"] * 30 + ["Test"] * 10 + ["Training"] * 10}
    evaluation = {"per_class": {"Apple": {"accuracy": 0.95, "test_images": 10}}}
    page = label_table(counts, table, evaluation)
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    header = ["label", "Test", "Training", "1-NN held-out top-1", "images", ""]
    assert re.findall(r"<th>([^<]*)</th>", rows[0]) == header
    assert "<td>Apple</td><td>10</td><td>30</td><td>95.0%</td><td>40</td>" in rows[1]
    assert "width:100.0%" in rows[1] and "width:25.0%" in rows[2] and "<td>-</td>" in rows[2]
    assert page.count("<svg") == 0  # no second drawing of the same counts
