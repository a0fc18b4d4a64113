"""The code's shape: one folder per stage, each saying in its docstring what it owns; imports
going only upstream (import-linter's contracts in pyproject.toml, checked here and by
`make lint`); the architecture page naming every folder and module."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "job" / "fruits"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(package_parent: Path, config_dir: Path) -> subprocess.CompletedProcess:
    """import-linter over the `fruits` package found under `package_parent`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=config_dir,
        capture_output=True,
        text=True,
        env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(package_parent)},
        timeout=120,
    )


def test_the_import_contracts_are_kept():
    done = lint_imports(ROOT / "job", ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "settings/errors.py",
            "from fruits.pipeline import run_job",
            "data flows one way",
        ),  # a stage importing downstream
        (
            "fit/tally.py",
            "def f():\n    from fruits.results import report",
            "data flows one way",
        ),  # lazily, still counted
        ("cluster/states.py", "from fruits.featurize import decode", "base install"),
    ],
)
def test_a_deliberate_wrong_import_breaks_a_contract(tmp_path, module, line, contract):
    copy = tmp_path / "job" / "fruits"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (copy / module).write_text((copy / module).read_text() + f"\n{line}\n")
    done = lint_imports(tmp_path / "job", tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    broken = [line for line in done.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), done.stdout[-3000:]


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_folder_says_what_it_owns(folder):
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())) or ""
    for module in sorted(p.stem for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__"):
        assert f"`{module}`" in doc, f"fruits/{folder}/__init__.py does not name its module {module}"


def test_the_top_level_has_only_the_job_and_the_stage_folders():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert top == ["entrypoint", "pipeline", "plan", "progress", "spark_session"]
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())) or ""
    for name in top + sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")):
        assert f"`{name}`" in doc, f"fruits/__init__.py does not name {name}"


def test_every_folder_is_a_layer_of_the_import_contract():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    names = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} | {
        p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"
    }
    assert sorted(layer.removeprefix("fruits.") for layer in layers) == sorted(names)


def test_the_architecture_page_names_every_folder_and_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    folders = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    rows = {line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| `")}
    assert {f"`{f}/`" for f in folders} <= rows
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            assert f"`{path.name}`" in page, f"docs/architecture.md does not name {path.relative_to(PACKAGE)}"
