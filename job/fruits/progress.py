"""Stage timings of a run, and a live view of them fed from Spark's status tracker."""

import threading
import time
from contextlib import contextmanager

from pyspark.sql import SparkSession

from fruits.featurize.progress_counter import ImageCounter


class StageClock:
    """Times the job's named stages; the pipeline reports through this interface only."""

    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, images: int | None = None):
        """Time a stage; `images` is how many images it reads, where it reads them. Yields
        where the stage's workers may report images done (fruits.featurize.progress_counter), or None."""
        start = time.perf_counter()
        try:
            yield None
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)


class SparkProgress(StageClock):
    """A Rich progress bar per stage: images done so far where the stage reads images (a
    featurize task holds ~2 000 of them, so task counts alone would sit at 0 of 2 for
    minutes; the workers report them live through an ImageCounter), otherwise the tasks
    Spark reports finished."""

    def __init__(self, spark: SparkSession, console):
        super().__init__()
        self._tracker = spark.sparkContext.statusTracker()
        self._sc = spark.sparkContext
        self._console = console
        self.reported: dict[str, tuple[int, int]] = {}  # stage -> (images, reports) the workers sent

    def _tasks(self) -> tuple[int, int]:
        total = done = 0
        for stage_id in self._tracker.getActiveStageIds():
            info = self._tracker.getStageInfo(stage_id)
            if info:
                total += info.numTasks
                done += info.numCompletedTasks
        return done, total

    @contextmanager
    def stage(self, name: str, images: int | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._sc.setJobDescription(name)
        unit = "images" if images else "Spark tasks"
        columns = (
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeElapsedColumn(),
        )
        stop = threading.Event()
        counter = ImageCounter() if images else None
        with Progress(*columns, console=self._console, transient=False) as bar:
            task = bar.add_task(name, total=images)

            def poll():
                finished_before = 0  # tasks of stages that already ended in this step
                last = (0, 0)
                while not stop.wait(0.25):
                    if counter:
                        assert images is not None  # a counter is made only for a count of images
                        bar.update(task, completed=min(counter.count, images))
                        continue
                    done, total = self._tasks()
                    if total == 0 and last[1]:
                        finished_before += last[1]
                    last = (done, total)
                    if not images:
                        bar.update(task, completed=finished_before + done, total=finished_before + total or None)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            finished = False
            try:
                with super().stage(name):
                    yield counter.address if counter else None
                finished = True
            finally:
                stop.set()
                poller.join()
                if counter:
                    counter.close()
                    self.reported[name] = (counter.count, counter.reports)
                if finished:  # a failed stage keeps the bar where it stopped
                    completed = images or max(bar.tasks[0].completed, 1)
                    bar.update(task, total=completed, completed=completed)
