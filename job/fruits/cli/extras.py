"""What a command needs beyond the base install: the `job` extra (PySpark, LiteRT, pyarrow,
Pillow, matplotlib) for the commands that run the job or read its results, and on a laptop the
`tf` extra (TensorFlow, Keras), which converts the backbone (the lean image bakes its models
and runs on `job` alone). The cluster and S3 commands run on the base alone."""

from fruits import DISTRIBUTION, declared_requirements, installed_versions
from fruits.settings.errors import UserError

EXTRA = "job"


def missing_job_libraries() -> list[str]:
    """The `job` extra's distributions for this platform (pyproject.toml, as installed: e.g.
    tensorflow-cpu on x86-64, tensorflow on arm64) that are not installed."""
    from packaging.requirements import Requirement  # ~25 ms: paid by the commands that check

    wanted = []
    for line in declared_requirements():  # none from a source tree: nothing to compare with
        requirement = Requirement(line)
        if requirement.marker is not None and requirement.marker.evaluate({"extra": EXTRA}):
            wanted.append(requirement.name)
    installed = installed_versions(*wanted)
    return [name for name in wanted if name not in installed]


def require_job_extra(command: str) -> None:
    """One sentence naming the extra, before a command imports what it lacks."""
    missing = missing_job_libraries()
    if missing:
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserError(
            f"fruitsctl {command} needs the job's libraries ({named} not installed): "
            f"pip install '{DISTRIBUTION}[{EXTRA},tf]' (the cluster and S3 commands run without them)."
        )
