"""Every `fruitsctl ...` and `make ...` command in the README's code blocks exists as written:
the command, each of its options, each make target (parsed, not run)."""

import re
import shlex
from pathlib import Path

import pytest
import typer

from fruits.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAKE_TARGETS = set(re.findall(r"^([a-zA-Z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def commands() -> list[list[str]]:
    """The shell commands of the README's bash blocks: continuation lines joined, comments and
    redirections left out, pipelines and && chains split."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
            lexer.commenters, lexer.whitespace_split = "#", True
            command = []
            for token in [*lexer, ";"]:
                if token in ("&&", "|", ";", "||", ">", "<"):
                    if command:
                        found.append(command)
                    command = [] if token not in (">", "<") else None
                elif command is not None:
                    command.append(token)
            # (after a redirection, the rest of the line is its target)
    return found


FRUITSCTL = [c for c in commands() if c and c[0].endswith("fruitsctl")]
MAKE = [c for c in commands() if c and c[0] == "make"]


def test_the_readme_shows_the_commands_of_each_way_in():
    used = {c[1] for c in FRUITSCTL}
    assert {"run", "submit", "wait", "render", "upload", "report"} <= used
    assert {"image", "image-push", "image-test", "minikube-run"} <= {t for c in MAKE for t in c[1:] if "=" not in t}


@pytest.mark.parametrize("command", FRUITSCTL, ids=[" ".join(c[:2]) for c in FRUITSCTL])
def test_each_fruitsctl_command_and_option_exists(command):
    group = typer.main.get_command(app)
    assert command[1] in group.commands, f"no command {command[1]!r}"
    cli = group.commands[command[1]]
    known = {option for param in cli.params if param.param_type_name == "option"
             for option in (*param.opts, *param.secondary_opts)}
    for token in command[2:]:
        if token.startswith("-") and not re.match(r"^-?\d", token):
            assert token.split("=")[0] in known, f"fruitsctl {command[1]} has no option {token}"


@pytest.mark.parametrize("command", MAKE, ids=[" ".join(c) for c in MAKE])
def test_each_make_target_exists(command):
    for token in command[1:]:
        if "=" not in token:
            assert token in MAKE_TARGETS, f"no make target {token!r}"


def test_make_minikube_run_follows_the_run_to_its_end():
    recipe = (ROOT / "Makefile").read_text().split("\nminikube-run:", 1)[1].split("\n\n", 1)[0]
    assert "fruitsctl wait fruits-pipeline --logs" in recipe and "|| true" not in recipe


def test_the_eks_steps_enable_irsa_and_use_one_role_name_and_the_pushed_image():
    eks = README.split("### EKS: S3 through IRSA", 1)[1].split("\n### ", 1)[0]
    assert eks.index("associate-iam-oidc-provider") < eks.index("aws iam create-role")
    assert "--role-name $ROLE" in eks and "role/$ROLE" in eks  # eksctl, aws and helm name the same role
    assert eks.index("kubectl apply -f deploy/namespace.yaml") < eks.index("spark.jobNamespaces={$NAMESPACE}")
    assert "--set cluster.image=$REGISTRY/fruits-pipeline" in eks and "make image-push REGISTRY=$REGISTRY" in eks
