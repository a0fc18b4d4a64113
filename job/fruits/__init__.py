"""Fruits! feature pipeline: images -> CNN features -> standardized PCA vectors.

One folder per stage, in the order the data flows: `settings` (every option, defined once),
`io` (files and S3, the run's layout, listing the input), `inference` (decode, CNN, the
featurize stage), `fit` (statistics, scaler + PCA, the projection), `results` (finished runs:
report, evaluate, export, what a later run reuses); the modules at this level run the job
(`pipeline`: the stages in order, `spark_session`, `entrypoint` for spark-submit,
`progress`); `cluster` and `cli` drive it from outside. A stage imports only the stages its
docstring names, never `cluster` or `cli` (tests/test_layout.py holds the code to it).

May import: settings, io, fit, inference, results.
"""

__version__ = "0.1.0"
DISTRIBUTION = "fruits-pipeline"


def declared_requirements() -> list[str]:
    """pyproject.toml's dependencies as this installation records them (pins, extras and
    markers); none when the package runs from a source tree."""
    from importlib import metadata  # 20-30 ms: paid by the commands that ask, not at fruitsctl's start

    try:
        return metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []


def installed_versions(*distributions: str) -> dict[str, str]:
    """The versions of those of these distributions that are installed."""
    from importlib import metadata

    found = {}
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found
