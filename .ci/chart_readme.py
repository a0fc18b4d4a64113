#!/usr/bin/env python3
"""Write the chart's README from its values.yaml, helm-docs style.

    python .ci/chart_readme.py            # (make chart-readme) writes charts/fruits-pipeline/README.md
    python .ci/chart_readme.py --check    # exit 1 when the committed README is not what it would write

A value is documented by a `# -- description` comment directly above its key; the comment
lines after the `# --` line continue the description. `# -- (type) description` overrides the
type, which otherwise comes from the default (or, for a null default, from
values.schema.json). Nested keys are dotted paths (`job.backbone`); a documented key whose
value is a map is one row, with the whole map as its default. Values without a `# --`
comment are still listed, with an empty description, and named on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "fruits-pipeline"

KEY = re.compile(r"""^(?P<indent>\s*)(?P<key>"[^"]+"|'[^']+'|[^\s#:'"-][^:#]*?)\s*:(?:\s+(?P<value>.*))?$""")
TYPED = re.compile(r"^\((?P<type>[\w ,|]+)\)\s*(?P<text>.*)$")
SCHEMA_TYPES = {
    "string": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "object": "object",
    "array": "list",
}


@dataclass(frozen=True)
class Row:
    path: tuple[str, ...]
    type: str
    default: object
    description: str

    @property
    def key(self) -> str:
        return dotted(self.path)


def dotted(path: tuple[str, ...]) -> str:
    """`job.backbone`; a key that holds a dot is quoted: `cluster.sparkConf."spark.x"`."""
    return ".".join(f'"{part}"' if "." in part else part for part in path)


def comments_above_keys(text: str) -> dict[tuple[str, ...], tuple[str | None, str]]:
    """Each key path of a values file and its `# --` comment: {path: (type or None, text)}.
    Keys without one are left out."""
    documented: dict[tuple[str, ...], tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    block_indent: int | None = None  # inside a block scalar (| or >): lines deeper than its key
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue
            block_indent = None
        if not stripped:
            pending = None
            continue
        if stripped.startswith("#"):
            body = stripped[1:]
            if body.startswith(" --") or body == " --" or body.startswith("--"):
                pending = [body.split("--", 1)[1].strip()]
            elif pending is not None:
                pending.append(body.strip())
            continue
        match = KEY.match(line)
        if not match:  # a list item or a flow continuation: part of the value above
            pending = None
            continue
        key = match["key"].strip()
        if key[0] in "\"'":
            key = key[1:-1]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        path = tuple(k for _, k in stack)
        if pending is not None:
            description = " ".join(part for part in pending if part)
            typed = TYPED.match(description)
            documented[path] = (typed["type"].strip(), typed["text"]) if typed else (None, description)
        pending = None
        value = (match["value"] or "").split(" #", 1)[0].strip()
        if value[:1] in ("|", ">"):
            block_indent = indent
    return documented


def leaves(values: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of every leaf value (a scalar, a list or an empty map), in file order."""
    if isinstance(values, dict) and values:
        return [leaf for key, value in values.items() for leaf in leaves(value, (*path, str(key)))]
    return [path]


def value_at(values: object, path: tuple[str, ...]) -> object:
    for key in path:
        values = values[key]  # type: ignore[index]
    return values


def schema_type(schema: dict, path: tuple[str, ...]) -> str | None:
    """The non-null type values.schema.json gives a path, in helm-docs' words, if any."""
    node: dict = schema
    for key in path:
        node = node.get("properties", {}).get(key) or {}
        if "$ref" in node:
            node = value_at(schema, tuple(node["$ref"].lstrip("#/").split("/")))  # type: ignore[assignment]
    kinds = node.get("type")
    if kinds is None and "enum" in node:
        kinds = sorted({type_of(v) for v in node["enum"] if v is not None})
        return " or ".join(kinds) if kinds else None
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    named = [SCHEMA_TYPES.get(kind, kind) for kind in kinds if kind != "null"]
    return " or ".join(named) if named else None


def type_of(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string"


def rows(values_text: str, schema: dict | None = None) -> list[Row]:
    """The table: every documented key, and every leaf no documented key covers, in file order."""
    values = yaml.safe_load(values_text) or {}
    documented = comments_above_keys(values_text)
    found: list[Row] = []
    seen: set[tuple[str, ...]] = set()
    for leaf in leaves(values):
        owner = next((leaf[:n] for n in range(1, len(leaf) + 1) if leaf[:n] in documented), leaf)
        if owner in seen:
            continue
        seen.add(owner)
        default = value_at(values, owner)
        given, description = documented.get(owner, (None, ""))
        kind = (
            given
            or (type_of(default) if default is not None else None)
            or (schema_type(schema, owner) if schema else None)
            or "string"
        )
        found.append(Row(owner, kind, default, description))
    return found


def undocumented(values_text: str) -> list[str]:
    """The leaf values no `# --` comment describes (neither theirs nor an enclosing map's)."""
    return [row.key for row in rows(values_text) if not row.description]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_cell(value: object) -> str:
    return "`" + cell(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) + "`"


def scenario_files(chart: Path) -> list[tuple[str, str]]:
    """ci/*.yaml and what each is for: the comment lines it starts with."""
    found = []
    for path in sorted((chart / "ci").glob("*.yaml")):
        head = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            head.append(line.lstrip("#").strip())
        found.append((f"ci/{path.name}", " ".join(head)))
    return found


def render(chart: Path = CHART) -> str:
    """The README for `chart`, from its Chart.yaml, values.yaml, values.schema.json and ci/."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    values_text = (chart / "values.yaml").read_text()
    schema_file = chart / "values.schema.json"
    schema = json.loads(schema_file.read_text()) if schema_file.exists() else None
    requires = (meta.get("annotations") or {}).get("fruits.io/requires", "the kubeflow spark-operator")
    lines = [
        f"# {meta['name']}",
        "",
        f"Version {meta['version']} · app version {meta.get('appVersion', meta['version'])} · "
        f"type {meta.get('type', 'application')} · Kubernetes {meta.get('kubeVersion', 'any')}",
        "",
        " ".join(str(meta.get("description", "")).split()),
        "",
        "<!-- Generated by .ci/chart_readme.py from values.yaml (make chart-readme): do not edit by hand. -->",
        "",
        "## What it deploys",
        "",
        "One run of the Fruits! feature pipeline: a `SparkApplication` for the kubeflow spark-operator, or a",
        "`ScheduledSparkApplication` when `schedule` is set; the ServiceAccounts of the driver and the executors",
        "(annotated with an IAM role for IRSA on EKS when `serviceAccount.iamRoleArn` is set); a namespaced Role and",
        "RoleBinding limited to what the driver does; and a NetworkPolicy that lets only the run's own pods",
        "connect to its pods. Pods are restricted (non-root uid 185, read-only root filesystem, no privilege",
        "escalation, all capabilities dropped, seccomp RuntimeDefault).",
        "",
        "With `historyServer.enabled`, also Spark's History Server reading the runs' event logs: a Deployment,",
        "its Service, ServiceAccount (its own IRSA role) and ConfigMap, and a NetworkPolicy for its port.",
        "",
        "## Prerequisites",
        "",
        f"- The spark-operator is a prerequisite, not a dependency of this chart: {requires}, installed from",
        "  its own chart and watching the release's namespace (its `spark.jobNamespaces`).",
        "- The pipeline image in a registry the cluster can pull from (`cluster.image`).",
        '- The namespace, created first: `deploy/namespace.yaml` enforces the Pod Security "restricted" profile.',
        "",
        "## Installing",
        "",
        "```bash",
        f"helm install {meta['name']} charts/{meta['name']} -n fruits -f charts/{meta['name']}/ci/eks-values.yaml",
        "```",
        "",
        "The values under `job` and `cluster` are the options of `fruitsctl render` in camelCase, with the same",
        "defaults; for the same settings the chart renders the SparkApplication that `fruitsctl render` prints.",
        "`values.schema.json` rejects wrong types and unknown keys. The project's documentation",
        "(`docs/deployment.md`, `docs/options.md`) explains each scenario and option.",
        "",
        "## Scenario values files",
        "",
        "The files under `ci/` are ready-made values for one scenario each (and the chart's tests render",
        "every one of them):",
        "",
    ]
    lines += [f"- `{name}`: {about}" if about else f"- `{name}`" for name, about in scenario_files(chart)]
    lines += [
        "",
        "## Values",
        "",
        "| Key | Type | Default | Description |",
        "|-----|------|---------|-------------|",
    ]
    lines += [
        f"| {row.key} | {cell(row.type)} | {default_cell(row.default)} | {cell(row.description)} |"
        for row in rows(values_text, schema)
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the committed README differs from what would be written"
    )
    parser.add_argument("--chart", type=Path, default=CHART, help="the chart folder (default: %(default)s)")
    args = parser.parse_args(argv)
    readme = args.chart / "README.md"
    for key in undocumented((args.chart / "values.yaml").read_text()):
        print(f"warning: {key} has no `# --` comment in values.yaml", file=sys.stderr)
    wanted = render(args.chart)
    if args.check:
        if not readme.exists() or readme.read_text() != wanted:
            print(
                f"{readme.relative_to(ROOT) if readme.is_relative_to(ROOT) else readme} is out of date: "
                "run `make chart-readme` (python .ci/chart_readme.py) and commit it.",
                file=sys.stderr,
            )
            return 1
        return 0
    readme.write_text(wanted)
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
