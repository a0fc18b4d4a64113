"""Killing a process with everything it started, as losing its machine would.

`os.killpg` is not enough for a Spark driver: PySpark's worker daemon moves itself and the
Python workers it forks into a process group of their own (pyspark/daemon.py), so they outlive
a killed group and go on finishing their task, writing its files after the "node" is gone.
"""

import os
import signal
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """The processes below `pid` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we read
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """Freeze `pid` and every process below it, then kill them all: nothing below can finish a
    write between the listing and the kill, nor fork a process the listing missed."""
    frozen: set[int] = set()
    while (tree := {pid} | descendants(pid)) - frozen:
        for member in tree - frozen:
            _signal(member, signal.SIGSTOP)
        frozen |= tree
    for member in frozen:
        _signal(member, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # already gone
