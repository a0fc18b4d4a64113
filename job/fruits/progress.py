"""Stage timings of a run, and a live view of them fed from Spark's status tracker."""

import threading
import time
from contextlib import contextmanager

from pyspark.sql import SparkSession


class StageClock:
    """Times the job's named stages; the pipeline reports through this interface only."""

    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)


class SparkProgress(StageClock):
    """A Rich progress bar per stage, advanced by the tasks Spark reports finished."""

    def __init__(self, spark: SparkSession, console):
        super().__init__()
        self._tracker = spark.sparkContext.statusTracker()
        self._sc = spark.sparkContext
        self._console = console

    def _tasks(self) -> tuple[int, int]:
        total = done = 0
        for stage_id in self._tracker.getActiveStageIds():
            info = self._tracker.getStageInfo(stage_id)
            if info:
                total += info.numTasks
                done += info.numCompletedTasks
        return done, total

    @contextmanager
    def stage(self, name: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._sc.setJobDescription(name)
        columns = (TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("Spark tasks"), TimeElapsedColumn())
        stop = threading.Event()
        with Progress(*columns, console=self._console, transient=False) as bar:
            task = bar.add_task(name, total=None)

            def poll():
                finished_before = 0  # tasks of stages that already ended in this step
                last = (0, 0)
                while not stop.wait(0.25):
                    done, total = self._tasks()
                    if total == 0 and last[1]:
                        finished_before += last[1]
                    last = (done, total)
                    bar.update(task, completed=finished_before + done, total=finished_before + total or None)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            try:
                with super().stage(name):
                    yield
            finally:
                stop.set()
                poller.join()
                completed = bar.tasks[0].completed
                bar.update(task, total=max(completed, 1), completed=max(completed, 1))
