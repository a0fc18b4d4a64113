"""The spark-operator's real CRD schemas, tightened to reject unknown (misspelt) keys."""

import copy
from functools import cache

import jsonschema
import yaml

from conftest import CRDS, require_shared


def tighten(schema: dict) -> dict:
    """additionalProperties: false on every object that lists its properties and does not
    preserve unknown fields (what the CRD's structural schema leaves open)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@cache
def validator(kind: str = "sparkapplications") -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(require_shared(CRDS / f"sparkoperator.k8s.io_{kind}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta2")
    return jsonschema.Draft7Validator(tighten(version["schema"]["openAPIV3Schema"]))


CLOSED_CRDS = {  # kind -> (CRD file in ../shared/crds, served version)
    "HelmRelease": ("helm.toolkit.fluxcd.io_helmreleases.yaml", "v2"),
    "GitRepository": ("source.toolkit.fluxcd.io_gitrepositories.yaml", "v1"),
    "Application": ("argoproj.io_applications.yaml", "v1alpha1"),
    "PodMonitor": ("monitoring.coreos.com_podmonitors.yaml", "v1"),
    "PrometheusRule": ("monitoring.coreos.com_prometheusrules.yaml", "v1"),
}


@cache
def closed_validator(kind: str) -> jsonschema.Draft7Validator:
    """A Flux, Argo CD or prometheus-operator kind's real schema, closed like the
    SparkApplication's (a field at the wrong level is an error here, where the controller
    would silently drop it)."""
    file, served = CLOSED_CRDS[kind]
    crd = yaml.safe_load(require_shared(CRDS / file).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == served)
    return jsonschema.Draft7Validator(tighten(version["schema"]["openAPIV3Schema"]))


def validate(document: dict) -> None:
    kind = {"SparkApplication": "sparkapplications", "ScheduledSparkApplication": "scheduledsparkapplications"}
    assert document["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    errors = sorted(validator(kind[document["kind"]]).iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
