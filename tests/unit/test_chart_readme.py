"""The chart's README is what .ci/chart_readme.py writes from values.yaml (helm-docs style):
committed up to date, with every value in its table."""

import importlib.util
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fruits-pipeline"

_spec = importlib.util.spec_from_file_location("chart_readme", ROOT / ".ci" / "chart_readme.py")
assert _spec and _spec.loader
chart_readme = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = chart_readme  # (dataclasses look their module up there)
_spec.loader.exec_module(chart_readme)


def table_keys(readme: str) -> list[str]:
    header = "| Key | Type | Default | Description |"
    table = readme.split(header, 1)[1].strip().splitlines()[1:]  # (the separator row)
    return [line.split(" | ", 1)[0].removeprefix("| ") for line in table if line.startswith("| ")]


def test_the_committed_chart_readme_is_generated_from_values_yaml():
    committed = (CHART / "README.md").read_text()
    assert committed == chart_readme.render(CHART), (
        "charts/fruits-pipeline/README.md is out of date: run `make chart-readme` (python .ci/chart_readme.py)"
    )


def test_every_leaf_value_is_in_the_table():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = set(table_keys((CHART / "README.md").read_text()))
    missing = [
        chart_readme.dotted(leaf)
        for leaf in chart_readme.leaves(values)
        if not any(chart_readme.dotted(leaf[:n]) in keys for n in range(1, len(leaf) + 1))
    ]
    assert not missing, f"the chart README's table lacks {missing}"


def test_every_value_has_a_description():
    assert chart_readme.undocumented((CHART / "values.yaml").read_text()) == []


def test_the_generator_reads_helm_docs_comments():
    text = """# The chart's values (not a description).
top: 1
# A plain comment, then no `# --`.
group:
  # -- A described value
  # that goes on.
  leaf: "x"
  # -- (int) Typed by hand.
  maybe: null
  # -- A whole map, one row.
  conf:
    a.b: "1"
  bare: true
"""
    rows = {row.key: row for row in chart_readme.rows(text)}
    assert list(rows) == ["top", "group.leaf", "group.maybe", "group.conf", "group.bare"]
    assert rows["group.leaf"].description == "A described value that goes on."
    assert (rows["group.leaf"].type, rows["group.maybe"].type) == ("string", "int")
    assert rows["group.conf"].default == {"a.b": "1"} and rows["group.conf"].type == "object"
    assert rows["top"].description == "" and rows["group.bare"].type == "bool"
    assert chart_readme.undocumented(text) == ["top", "group.bare"]


def test_check_mode_fails_on_a_stale_readme(tmp_path, capsys):
    chart = tmp_path / "chart"
    (chart / "ci").mkdir(parents=True)
    for name in ("Chart.yaml", "values.yaml", "values.schema.json"):
        (chart / name).write_text((CHART / name).read_text())
    (chart / "README.md").write_text("# stale\n")
    assert chart_readme.main(["--check", "--chart", str(chart)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert chart_readme.main(["--chart", str(chart)]) == 0
    assert chart_readme.main(["--check", "--chart", str(chart)]) == 0
