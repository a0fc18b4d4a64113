"""What a command needs beyond the base install: the `job` extra (PySpark, TensorFlow/LiteRT,
pyarrow, Pillow, matplotlib) for the commands that run the job or read its results. The
cluster and S3 commands run on the base alone."""

import re

from fruits import DISTRIBUTION, declared_requirements, installed_versions
from fruits.settings.errors import UserError

EXTRA = "job"


def missing_job_libraries() -> list[str]:
    """The `job` extra's distributions (pyproject.toml, as installed) that are not installed;
    those with a platform marker (the two TensorFlow builds) are left to the others."""
    wanted = []
    for requirement in declared_requirements():  # none from a source tree: nothing to compare with
        spec, _, marker = requirement.partition(";")
        if f'extra == "{EXTRA}"' in marker and "platform_machine" not in marker:
            wanted.append(re.match(r"[A-Za-z0-9._-]+", spec.strip()).group(0))
    installed = installed_versions(*wanted)
    return [name for name in wanted if name not in installed]


def require_job_extra(command: str) -> None:
    """One sentence naming the extra, before a command imports what it lacks."""
    missing = missing_job_libraries()
    if missing:
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserError(f"fruitsctl {command} needs the job's libraries ({named} not installed): "
                        f"pip install '{DISTRIBUTION}[{EXTRA}]' (the cluster and S3 commands run without them).")
