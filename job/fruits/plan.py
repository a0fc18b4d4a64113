"""The run plan: what a run will do, decided before any Spark work and from plain values
(the listing, the previous runs, the cores), so a unit test can build and check it.

`pipeline.run_job` gathers those values, plans, executes the plan and records the manifest.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from fruits.fit.reduce import Reduction
from fruits.ingest.listing import ListedImage, Listing
from fruits.io.output import part_file
from fruits.io.storage import Store
from fruits.runs.finished_run import FinishedRun
from fruits.runs.reuse import ReusePlan
from fruits.settings.config import JobConfig
from fruits.settings.errors import UserError
from fruits.write.projection import RowSource

# ~5 s of CNN work at 96 px: a task's own cost (~0.2 s: launch, the hand-over to Python, its
# moments through the accumulator) stays under 5%. On 2 592 images, 2 tasks ran as fast as 4, 15%
# faster than 8.
IMAGES_PER_TASK = 2_000
FINGERPRINT_SETTINGS = ("backbone", "weights", "image_size", "runtime", "precision", "fit_fraction", "seed")


def choose_partitions(images: int, cores: int) -> int:
    """Featurize tasks: a multiple of the cores (no half-empty last wave), at most
    IMAGES_PER_TASK images each: each task pays scheduling plus a model warm-up."""
    waves = max(1, -(-images // (cores * IMAGES_PER_TASK)))
    return max(1, min(images, cores * waves))


def with_run_id(config: JobConfig, run_id: str) -> JobConfig:
    """The config of run `run_id`: {run_id} in --output replaced (scheduled runs: one output per run)."""
    if not config.input or not config.output:
        raise UserError("The job needs both --input and --output.")
    if "{run_id}" not in config.output:
        return config
    return dataclasses.replace(config, output=config.output.replace("{run_id}", run_id))


def plan_fingerprint(listing: Listing, partitions: int, config: JobConfig, previous: str | None = None) -> str:
    """What a finished partition's staged files depend on: the images (path, size, time), how
    they were cut and featurized, and the previous run whose rows are reused. A retried
    driver keeps the partitions of a run with the same fingerprint."""
    digest = hashlib.sha256()
    settings = {name: getattr(config, name) for name in FINGERPRINT_SETTINGS}
    digest.update(json.dumps([partitions, settings, previous], sort_keys=True).encode())
    for path, size, modified in zip(listing.paths, listing.sizes, listing.modified):
        digest.update(f"{path}\0{size}\0{modified}\n".encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class RunPlan:
    """What one run does: its id and settings, the images it featurizes (as tasks), the rows it
    keeps from a previous run, and the model it applies instead of fitting, if any."""

    run_id: str
    config: JobConfig  # {run_id} replaced; an applied run's backbone settings in place
    listing: Listing  # every image of the input, and what listing found wrong or skipped
    tasks: dict[int, list[ListedImage]]  # featurize tasks by partition number
    kept: dict[int, RowSource]  # the previous run's rows kept, numbered after the tasks
    reuse: ReusePlan | None  # --incremental-from: what is reused, featurized, dropped
    applied: FinishedRun | None  # the run whose model is applied (--apply-model, --reuse-model)
    applied_reduction: Reduction | None  # that model, read before any work
    cores: int
    fingerprint: str
    warnings: tuple[str, ...] = ()

    @property
    def images(self) -> int:
        return len(self.listing.paths)

    def staged_sources(self, store: Store, staging: str) -> dict[int, RowSource]:
        """The featurize tasks' staged rows in the run's output, as the projection's sources."""
        return {partition: RowSource(store, f"{staging}/{part_file(partition)}") for partition in self.tasks}


def plan_run(
    config: JobConfig,
    run_id: str,
    listing: Listing,
    cores: int,
    reuse: ReusePlan | None = None,
    applied: tuple[FinishedRun, Reduction] | None = None,
    warnings: tuple[str, ...] = (),
) -> RunPlan:
    """The plan of run `run_id` of `config` over `listing`, on `cores` cores; `reuse`: what an
    incremental run takes from the previous one; `applied`: the run and model applied."""
    to_featurize = reuse.featurize if reuse else listing
    partitions = config.partitions or choose_partitions(len(to_featurize.paths), cores)
    tasks = to_featurize.tasks(partitions)
    previous = reuse.previous.run_id if reuse else None
    return RunPlan(
        run_id=run_id,
        config=config,
        listing=listing,
        tasks=tasks,
        kept=reuse.sources(first_partition=len(tasks)) if reuse else {},
        reuse=reuse,
        applied=applied[0] if applied else None,
        applied_reduction=applied[1] if applied else None,
        cores=cores,
        fingerprint=plan_fingerprint(listing, partitions, config, previous),
        warnings=tuple(warnings),
    )
