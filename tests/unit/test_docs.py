"""The docs describe the product as it is: every option in the tables of docs/options.md, a
short README, and no lab-notebook history (rounds, sessions, issue numbers, our machines) in
any page or in the code's docstrings and comments."""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from fruits.cluster.cluster_config import CLUSTER_FIELDS
from fruits.settings.config import FIELDS, flag

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = (ROOT / "docs" / "options.md").read_text()
README_MAX_LINES = 250

PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "charts" / "fruits-pipeline" / "README.md",
        *(ROOT / "docs").rglob("*.md"),
    ]
)
CODE = sorted(path for path in (ROOT / "job").rglob("*.py") if ".egg-info" not in str(path))

HISTORY = [
    (re.compile(r"\b(this|earlier|last|latest|previous|next|that|an earlier|a later) rounds?\b", re.I), "rounds"),
    (re.compile(r"\brounds? \d+\b", re.I), "a round number"),
    (re.compile(r"\bsessions? \d+\b", re.I), "a session number"),
    (re.compile(r"(?<![\w&/#:])#\d{2,}\b"), "an issue number"),
    (re.compile(r"\b[\w.-]+/[\w.-]+#\d+\b"), "an issue number"),
    (re.compile(r"\b(before|after|since|in|of) #\d+\b", re.I), "an issue number"),
    (re.compile(r"\bGUIDE\.md\b"), "the build guide"),
    (re.compile(r"\bour build(s| machines?)\b", re.I), "our build machines"),
    (re.compile(r"\bMaven Central is not reachable\b", re.I), "our build machines"),
    (re.compile(r"\bthe shared machine\b", re.I), "our build machines"),
    (re.compile(r"\btargets?\b[^\n]{0,40}?\b(not )?met\b", re.I), "a target met or not"),
    (re.compile(r"\b(this|earlier|previous|latest) (round|session|iteration)\b", re.I), "history"),
]
# A commit: 7-40 hex digits with a letter and a digit; in prose only (code holds real hashes).
COMMIT = re.compile(r"(?<![\w/.-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}(?![\w/.-])")


def history_in(text: str, *, commits: bool) -> list[str]:
    """Every phrase of `text` that tells history instead of the product, with its line number."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, what in HISTORY:
            for match in pattern.finditer(line):
                found.append(f"{number}: {what}: {match.group(0)!r}")
        if commits:
            found += [f"{number}: a commit hash: {m.group(0)!r}" for m in COMMIT.finditer(line)]
    return found


def prose_of(path: Path) -> str:
    """A Python file's docstrings and comments, each at its own line number (the rest blank)."""
    source = path.read_text()
    lines = [""] * (source.count("\n") + 2)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            lines[token.start[0] - 1] += token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                for offset, line in enumerate(first.value.value.splitlines()):
                    lines[first.lineno - 1 + offset] += " " + line
    return "\n".join(lines)


def test_every_job_option_is_in_the_options_table():
    missing = [flag(name) for name in FIELDS if f"| `{flag(name)}` |" not in OPTIONS]
    assert not missing, f"docs/options.md's job options table lacks {missing}"


def test_every_cluster_option_is_in_the_options_table():
    missing = [flag(name) for name in CLUSTER_FIELDS if f"| `{flag(name)}`" not in OPTIONS]
    assert not missing, f"docs/options.md's cluster options table lacks {missing}"


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: keep {README_MAX_LINES} at most, the rest in docs/"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_no_page_tells_history(page):
    found = history_in(page.read_text(), commits=True)
    assert not found, f"{page.relative_to(ROOT)} tells history (it belongs in CHANGELOG.md): {found}"


@pytest.mark.parametrize("module", CODE, ids=[str(p.relative_to(ROOT)) for p in CODE])
def test_no_docstring_or_comment_tells_history(module):
    found = history_in(prose_of(module), commits=False)
    assert not found, f"{module.relative_to(ROOT)} tells history in a docstring or comment: {found}"


def test_the_history_check_catches_what_it_is_for():
    told = [
        "Earlier rounds, at 128 px",
        "(this round)",
        "before #20 (88c4efa, same minute)",
        "Maven Central is not reachable from our build machines",
        "target 4x: met",
        "(target 0.85: not met, see below)",
        "the target (0.25x) is not met",
        "as on our build machines",
        "GUIDE.md",
        "in session 3",
        "docker-library/official-images#22217, merged",
    ]
    assert all(history_in(text, commits=True) for text in told), [t for t in told if not history_in(t, commits=True)]
    fine = [
        "a py4j round trip per file",
        "median of 21 runs, round robin",
        "color:#222",
        "the whole Spark session",
        "`part-00007.parquet`",
        "the SHA-256 of the jar",
        "docs/options.md#job-options",
        "variance_target: float | None  # the targets metadata",
    ]
    assert not any(history_in(text, commits=True) for text in fine), [t for t in fine if history_in(t, commits=True)]
