"""What a command needs beyond the base install: the `job` extra (PySpark, TensorFlow/LiteRT,
pyarrow, Pillow, matplotlib) for the commands that run the job or read its results. The
cluster and S3 commands run on the base alone."""

import re

from fruits.settings.errors import UserError

DISTRIBUTION, EXTRA = "fruits-pipeline", "job"


def missing_job_libraries() -> list[str]:
    """The `job` extra's distributions (pyproject.toml, as installed) that are not installed;
    those with a platform marker (the two TensorFlow builds) are left to the others."""
    from importlib import metadata  # 20 ms: when a command asks, not at fruitsctl's start

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:  # run from a source tree: nothing to compare with
        return []
    missing = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        if f'extra == "{EXTRA}"' not in marker or "platform_machine" in marker:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", spec.strip()).group(0)
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def require_job_extra(command: str) -> None:
    """One sentence naming the extra, before a command imports what it lacks."""
    missing = missing_job_libraries()
    if missing:
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserError(f"fruitsctl {command} needs the job's libraries ({named} not installed): "
                        f"pip install '{DISTRIBUTION}[{EXTRA}]' (the cluster and S3 commands run without them).")
