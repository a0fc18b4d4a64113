"""What `make policy` scans with Checkov: the chart rendered with each ci/ values file, plus the
driver and executor Pods the spark-operator makes from each SparkApplication (Checkov checks
Pods, not the SparkApplication custom resource; the operator copies these pod settings).

    python .ci/policy_manifests.py OUT_DIR
"""

import re
import sys
from pathlib import Path

import yaml
from helm_python import Chart

CHART = Path(__file__).resolve().parents[1] / "charts" / "fruits-pipeline"
UNITS = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def mebibytes(*sizes: str) -> str:
    return f"{int(sum(int(s[:-1]) * UNITS[s[-1]] if s[-1] in UNITS else int(s) / 2**20 for s in sizes))}Mi"


def pods(app: dict, accounts: dict[str, bool]) -> list[dict]:
    spec = app["spec"].get("template", app["spec"])  # a ScheduledSparkApplication holds a template
    found = []
    for role in ("driver", "executor"):
        part = spec[role]
        memory = mebibytes(part["memory"], part["memoryOverhead"])
        found.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{app['metadata']['name']}-{role}",
                    "namespace": app["metadata"]["namespace"],
                    "labels": part["labels"],
                },
                "spec": {
                    "serviceAccountName": part["serviceAccount"],
                    "automountServiceAccountToken": accounts.get(part["serviceAccount"], True),
                    "securityContext": part["podSecurityContext"],
                    "volumes": spec["volumes"],
                    "containers": [
                        {
                            "name": f"spark-kubernetes-{role}",
                            "image": spec["image"],
                            "imagePullPolicy": spec["imagePullPolicy"],
                            "securityContext": part["securityContext"],
                            "volumeMounts": part["volumeMounts"],
                            **({"envFrom": part["envFrom"]} if "envFrom" in part else {}),
                            "resources": {
                                "requests": {"cpu": str(part["cores"]), "memory": memory},
                                "limits": {"cpu": part["coreLimit"], "memory": memory},
                            },
                        }
                    ],
                },
            }
        )
    return found


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    chart = Chart.load(str(CHART))
    for values_file in sorted((CHART / "ci").glob("*values.yaml")):
        rendered = chart.render(yaml.safe_load(values_file.read_text()), name="fruits", namespace="fruits")
        documents = [
            d
            for path, text in rendered.items()
            if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text)
            if d
        ]
        accounts = {
            d["metadata"]["name"]: d.get("automountServiceAccountToken", True)
            for d in documents
            if d["kind"] == "ServiceAccount"
        }
        documents += [pod for d in documents if re.search(r"SparkApplication$", d["kind"]) for pod in pods(d, accounts)]
        (out / values_file.name).write_text(yaml.safe_dump_all(documents, sort_keys=False))
        print(out / values_file.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
