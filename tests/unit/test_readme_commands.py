"""Every `fruitsctl ...` and `make ...` command in the code blocks of the README and of the
docs pages exists as written: the command, each of its options, each make target (parsed,
not run)."""

import re
import shlex
from pathlib import Path

import pytest
import typer

from fruits.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MAKE_TARGETS = set(re.findall(r"^([a-zA-Z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def commands(text: str) -> list[list[str]]:
    """The shell commands of a page's bash blocks: continuation lines joined, comments,
    redirections and leading VAR=value assignments left out, pipelines and && chains split."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
            lexer.commenters, lexer.whitespace_split = "#", True
            command: list[str] | None = []
            for token in [*lexer, ";"]:
                if token in ("&&", "|", ";", "||", ">", "<"):
                    if command:
                        found.append(command)
                    command = [] if token not in (">", "<") else None
                elif command is not None and not (not command and ASSIGNMENT.match(token)):
                    command.append(token)
            # (after a redirection, the rest of the line is its target)
    return found


# (page, command) for every command of every page
ALL = [(name(page), command) for page in PAGES for command in commands(page.read_text())]
FRUITSCTL = [(page, c) for page, c in ALL if c[0].endswith("fruitsctl")]
MAKE = [(page, c) for page, c in ALL if c[0] == "make"]


def test_the_docs_show_the_commands_of_each_way_in():
    used = {c[1] for _, c in FRUITSCTL if len(c) > 1}
    assert {"run", "submit", "wait", "render", "upload", "report"} <= used
    assert {"image", "image-push", "image-test", "minikube-run"} <= {t for _, c in MAKE for t in c[1:] if "=" not in t}


def test_the_readme_shows_the_quickstart_and_the_test_command():
    readme = [c for page, c in ALL if page == "README.md"]
    assert ["make", "install"] in readme and ["make", "test"] in readme
    assert any(c[0].endswith("fruitsctl") and c[1:2] == ["run"] for c in readme)


def test_every_fruitsctl_command_is_shown_somewhere():
    group = typer.main.get_command(app)
    shown = {c[1] for _, c in FRUITSCTL if len(c) > 1}
    missing = sorted(set(group.commands) - shown)
    assert not missing, f"no bash block of the README or docs/ runs fruitsctl {missing}"


@pytest.mark.parametrize(("page", "command"), FRUITSCTL, ids=[f"{p}: {' '.join(c[:2])}" for p, c in FRUITSCTL])
def test_each_fruitsctl_command_and_option_exists(page, command):
    group = typer.main.get_command(app)
    assert len(command) > 1 and command[1] in group.commands, f"{page}: no command {command[1:2]!r}"
    cli = group.commands[command[1]]
    known = {
        option
        for param in cli.params
        if param.param_type_name == "option"
        for option in (*param.opts, *param.secondary_opts)
    }
    for token in command[2:]:
        if token.startswith("-") and not re.match(r"^-?\d", token):
            assert token.split("=")[0] in known, f"{page}: fruitsctl {command[1]} has no option {token}"


@pytest.mark.parametrize(("page", "command"), MAKE, ids=[f"{p}: {' '.join(c)}" for p, c in MAKE])
def test_each_make_target_exists(page, command):
    for token in command[1:]:
        if "=" not in token:
            assert token in MAKE_TARGETS, f"{page}: no make target {token!r}"


def test_make_minikube_run_follows_the_run_to_its_end():
    recipe = (ROOT / "Makefile").read_text().split("\nminikube-run:", 1)[1].split("\n\n", 1)[0]
    assert "fruitsctl wait fruits-pipeline --logs" in recipe and "|| true" not in recipe


def test_the_eks_steps_enable_irsa_and_use_one_role_name_and_the_pushed_image():
    heading = "### EKS: S3 through IRSA"
    pages = [page for page in PAGES if heading in page.read_text()]
    assert len(pages) == 1, f"{heading!r} should head one section of the docs, found in {[name(p) for p in pages]}"
    eks = pages[0].read_text().split(heading, 1)[1].split("\n### ", 1)[0]
    assert eks.index("associate-iam-oidc-provider") < eks.index("aws iam create-role")
    assert "--role-name $ROLE" in eks and "role/$ROLE" in eks  # eksctl, aws and helm name the same role
    assert eks.index("kubectl apply -f deploy/namespace.yaml") < eks.index("spark.jobNamespaces={$NAMESPACE}")
    assert "--set cluster.image=$REGISTRY/fruits-pipeline" in eks and "make image-push REGISTRY=$REGISTRY" in eks
