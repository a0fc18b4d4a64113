"""deploy/gitops/: the Flux and Argo CD manifests against the controllers' real CRDs (closed),
and the order they must apply in."""

from pathlib import Path

import pytest
import yaml

from support.crd_schema import closed_validator

GITOPS = Path(__file__).resolve().parents[2] / "deploy" / "gitops"
CHART = "charts/fruits-pipeline"


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((GITOPS / name).read_text()) if d]


@pytest.mark.parametrize("name", ["flux-helmrelease.yaml", "argocd-application.yaml"])
def test_every_gitops_object_passes_its_controllers_closed_schema(name):
    for document in documents(name):
        if document["kind"] == "Namespace":
            continue
        errors = sorted(closed_validator(document["kind"]).iter_errors(document), key=str)
        assert not errors, "\n".join(f"{document['kind']} {list(e.path)}: {e.message}" for e in errors[:10])


def test_the_closed_schema_catches_values_files_at_the_wrong_level():
    release = next(d for d in documents("flux-helmrelease.yaml") if d["kind"] == "HelmRelease")
    release["spec"]["valuesFiles"] = release["spec"]["chart"]["spec"].pop("valuesFiles")  # where it used to be
    assert any("valuesFiles" in e.message for e in closed_validator("HelmRelease").iter_errors(release))


def test_flux_reads_the_charts_values_first_rebuilds_on_each_commit_and_finds_its_namespace():
    kinds = [d["kind"] for d in documents("flux-helmrelease.yaml")]
    assert kinds.index("Namespace") < kinds.index("HelmRelease")
    release = documents("flux-helmrelease.yaml")[kinds.index("HelmRelease")]
    namespace = documents("flux-helmrelease.yaml")[kinds.index("Namespace")]["metadata"]["name"]
    assert release["metadata"]["namespace"] == namespace
    chart = release["spec"]["chart"]["spec"]
    assert chart["valuesFiles"][0] == f"{CHART}/values.yaml" and chart["reconcileStrategy"] == "Revision"
    for path in chart["valuesFiles"]:
        assert (GITOPS.parents[1] / path).is_file(), path


def test_both_override_the_image_placeholder_and_argo_values_files_exist():
    release = next(d for d in documents("flux-helmrelease.yaml") if d["kind"] == "HelmRelease")
    (application,) = documents("argocd-application.yaml")
    helm = application["spec"]["source"]["helm"]
    assert release["spec"]["values"]["cluster"]["image"] == helm["valuesObject"]["cluster"]["image"]
    for path in helm["valueFiles"]:
        assert (GITOPS.parents[1] / application["spec"]["source"]["path"] / path).is_file(), path
    assert "ServerSideApply=true" not in application["spec"]["syncPolicy"]["syncOptions"]  # it deploys no CRD


def test_namespaces_enforce_the_restricted_pod_security_profile():
    from kubernetes_validate import validate as validate_core

    (namespace,) = yaml.safe_load_all((GITOPS.parent / "namespace.yaml").read_text())
    validate_core(namespace, "1.31.0", strict=True)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    flux = next(d for d in documents("flux-helmrelease.yaml") if d["kind"] == "Namespace")
    assert flux == namespace  # one definition, repeated where Flux needs it
