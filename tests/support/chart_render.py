"""The chart rendered by Helm's own engine (helm-python-sdk), as objects by kind."""

from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "fruits-pipeline"


def render(chart, values, name="fruits", namespace="ml") -> dict[str, list[dict]]:
    """Rendered objects by kind."""
    objects: dict[str, list[dict]] = {}
    for path, text in chart.render(values, name=name, namespace=namespace).items():
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.setdefault(document["kind"], []).append(document)
    return objects
