"""Fruits! feature pipeline: images -> CNN features -> standardized PCA vectors.

One folder per stage, in the order the data flows: `settings` (every option, defined once,
and the backbone catalogue), `io` (files and S3, the run's output layout), `ingest` (listing
and labelling the input), `featurize` (decode, the backbone, the featurize stage), `fit`
(statistics, scaler + PCA), `write` (the projection, the model files, the manifest), `runs`
(finished runs and what a later run reuses of them), `results` (report, evaluate, export:
readers of finished runs, never imported by the job). The modules at this level run the job:
`plan` (the run plan, before any Spark work), `pipeline` (plan -> execute -> record),
`spark_session`, `entrypoint` for spark-submit, `progress`. `cluster` and `cli` drive it from
outside. A folder imports only the folders upstream of it: the import-linter contracts in
pyproject.toml hold the code to that (`lint-imports`).
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
