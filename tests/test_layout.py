"""The code's shape: one folder per stage, each saying in its docstring what it owns and what
it may import, and every import going the way the docstrings say (never into cli or cluster
from a stage, no cycles between folders)."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "job" / "fruits"
DRIVERS = {"cli", "cluster"}  # drive the job from outside: no stage imports them


def home(module: str) -> str:
    """Where a module lives: its folder under fruits, or its own name at the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fruits"


def modules(package: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(module: str, path: Path) -> set[str]:
    """The fruits modules a module imports, at the top or inside functions (lazy imports count)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    known = modules(path.parents[len(package) - 1])

    def base_or_module(base: str, name: str) -> str:  # `from fruits import io` imports a folder
        return f"{base}.{name}" if f"{base}.{name}" in known else base

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.update(base_or_module(base, a.name) for a in node.names)
    return {n for n in names if n in known and n != module}


def allowed_imports(docstring: str, homes: set[str]) -> set[str]:
    """The homes a docstring's "May import:" line names ("everything", "nothing else ...")."""
    line = re.search(r"^May import: (.*)$", docstring, re.M | re.S)
    assert line, "no 'May import:' line"
    text = re.sub(r"\([^)]*\)", "", line.group(1).split("\n\n")[0])
    if text.strip().startswith("everything"):
        return set(homes)
    if text.strip().startswith("nothing"):
        return set()
    words = {w for w in re.split(r"[\s,.]+|\band\b", text) if w}
    return {w for w in words if w in homes}


def violations(package: Path) -> list[str]:
    found = modules(package)
    homes = {home(m) for m in found}
    rules = {}
    for module, path in found.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            rules[home(module) if module != package.name else "fruits"] = allowed_imports(doc, homes)
    top_level = {h for h in homes if (package / f"{h}.py").is_file()}
    problems = []
    for module, path in found.items():
        source = home(module)
        may = rules["fruits"] | top_level if source in top_level else rules.get(source, set())
        for target in sorted(imported(module, path)):
            goal = home(target)
            if target == package.name or goal == source:
                continue
            if goal in DRIVERS and source not in DRIVERS:
                problems.append(f"{module} imports {target}: a stage never imports {goal}")
            elif goal not in may:
                problems.append(f"{module} imports {target}: its docstring allows only {sorted(may)}")
    return problems


def folder_graph(package: Path) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules(package).items():
        graph.setdefault(home(module), set()).update(
            home(t) for t in imported(module, path) if home(t) != home(module) and t != package.name)
    return graph


def test_every_import_goes_the_way_the_docstrings_say():
    assert violations(PACKAGE) == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of folders importing each other, or None."""
    done: set[str] = set()

    def visit(node, path):
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            if cycle := visit(nxt, path + [node]):
                return cycle
        done.add(node)
        return None

    return next((c for c in (visit(n, []) for n in sorted(graph)) if c), None)


def test_folders_import_each_other_without_cycles():
    assert find_cycle(folder_graph(PACKAGE)) is None


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_folder_says_what_it_owns(folder):
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())) or ""
    assert "May import:" in doc
    for module in sorted(p.stem for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__"):
        assert f"`{module}`" in doc, f"fruits/{folder}/__init__.py does not name its module {module}"


def test_the_top_level_has_only_the_job_and_the_stage_folders():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert top == ["entrypoint", "pipeline", "progress", "spark_session"]
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    for name in top + sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")):
        assert f"`{name}`" in doc, f"fruits/__init__.py does not name {name}"


def write(root: Path, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_catch_a_stage_importing_upstream_a_driver_or_in_a_cycle(tmp_path):
    package = tmp_path / "fruits"
    write(package, {
        "__init__.py": '"""Top.\n\nMay import: settings, fit.\n"""\n',
        "pipeline.py": "from fruits.fit import reduce\n",
        "settings/__init__.py": '"""Settings.\n\nMay import: nothing else in fruits.\n"""\n',
        "settings/config.py": "def f():\n    from fruits.fit.reduce import x  # lazy, still counted\n",
        "fit/__init__.py": '"""Fit.\n\nMay import: settings.\n"""\n',
        "fit/reduce.py": "from fruits.settings import config\nfrom ..cli import main\n",
        "cli/__init__.py": '"""CLI.\n\nMay import: everything.\n"""\n',
        "cli/main.py": "import fruits.pipeline\n",
    })
    assert violations(package) == [
        "fruits.fit.reduce imports fruits.cli.main: a stage never imports cli",
        "fruits.settings.config imports fruits.fit.reduce: its docstring allows only []",
    ]
    cycle = find_cycle(folder_graph(package))
    assert cycle == ["cli", "pipeline", "fit", "cli"]


def test_the_readme_code_map_names_every_folder_and_module():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    code_map = readme.split("\n## Code map\n", 1)[1].split("\n## ", 1)[0]
    folders = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    rows = [line.split("|")[1].strip() for line in code_map.splitlines() if line.startswith("| `")]
    assert sorted(rows) == [f"`{f}/`" for f in folders]
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            assert f"`{path.name}`" in code_map, f"the README's code map does not name {path.relative_to(PACKAGE)}"
