"""Publishing a build: the new warehouse file and its side folders are written beside the
published ones and swapped in at the end, the file with one ``os.replace`` once every
audit passes. A reader who has the old file open keeps reading it undisturbed (and never
blocks the swap); a crash leaves the published files as they were. One run at a time per
warehouse."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import duckdb

from transforms.disputes import disputes_dir
from transforms.failpoints import failpoint
from transforms.parquet import parquet_dir


class RunLocked(Exception):
    """Another run holds the warehouse's lock."""


def _lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def _busy(warehouse: Path, lock: IO[str]) -> RunLocked:
    lock.seek(0)
    holder = lock.read().strip() or "another process"
    return RunLocked(f"{warehouse} is being built by {holder}; try again later")


def check_not_running(warehouse: Path) -> None:
    """Raise RunLocked if a run holds the warehouse's lock now: a second run is told before
    it starts anything (run_lock checks again when it takes the lock)."""
    try:
        lock = open(_lock_path(warehouse))  # noqa: SIM115 (closed below)
    except OSError:  # no lock file: no run has ever held it
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(warehouse, lock) from None
        fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def run_lock(warehouse: Path) -> Iterator[None]:
    """One run at a time per warehouse; a second one is refused at once, not queued."""
    with open(_lock_path(warehouse), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(warehouse, lock) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()


def _swap_dir(new: Path, target: Path) -> None:
    """Replace a directory by another: two renames, so a reader sees the old or the new."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class Workspace:
    """A build's paths: the new warehouse file and side folders, written beside the
    published ones and swapped in at the end; a scratch folder for DuckDB's spills."""

    warehouse: Path

    def __post_init__(self) -> None:
        pid = os.getpid()
        w = self.warehouse
        self.building = w.with_name(f".{w.name}.building-{pid}")
        self.scratch = w.with_name(f".{w.name}.scratch-{pid}")
        self.side_dirs = [parquet_dir(w), disputes_dir(w)]
        self.side_building = [d.with_name(f".{d.name}.building-{pid}") for d in self.side_dirs]

    def clear_stale(self) -> None:
        """Remove what a killed run left; we hold the lock, so nobody uses it."""
        w = self.warehouse
        for stale in w.parent.glob(f".{w.name}.building-*"):
            stale.unlink()
        for stale in w.parent.glob(f".{w.name}.scratch-*"):
            shutil.rmtree(stale)
        for d in self.side_dirs:
            for stale in w.parent.glob(f".{d.name}.*"):
                shutil.rmtree(stale)

    @property
    def published_stamp(self) -> Path:
        """Size, inode and modification time of the file as published (see publish())."""
        w = self.warehouse
        return w.with_name(f".{w.name}.published")

    def _stamp(self) -> str:
        s = self.warehouse.stat()
        return f"{s.st_size} {s.st_ino} {s.st_mtime_ns}"

    def changed_since_published(self) -> str | None:
        """Why the published file may not be the one our last publish wrote, or None. (An
        analyst can open it read-write and change it; an incremental night must not build
        on that.)"""
        try:
            stamp = self.published_stamp.read_text()
        except OSError:
            return "the published file has no record of being published by this version"
        if stamp != self._stamp():
            return "the published file was changed after it was published"
        return None

    def discard(self) -> None:
        self.building.unlink(missing_ok=True)
        for d in [*self.side_building, self.scratch]:
            shutil.rmtree(d, ignore_errors=True)

    @contextlib.contextmanager
    def publishing(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Build inside the block; when it ends, close ``con`` and publish. On any error,
        close it and discard what was written: the published files stay as they were."""
        try:
            yield
        except BaseException:
            con.close()
            self.discard()
            raise
        con.close()
        self.publish()

    def publish(self) -> None:
        """Swap the new file in (atomic: readers see the old file or the new one), then
        the side folders."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        with open(self.building, "rb") as f:
            os.fsync(f.fileno())
        failpoint("build:publish")
        self.published_stamp.unlink(missing_ok=True)
        os.replace(self.building, self.warehouse)
        self.published_stamp.write_text(self._stamp())
        for new, target in zip(self.side_building, self.side_dirs, strict=True):
            if new.exists():
                _swap_dir(new, target)
        dir_fd = os.open(self.warehouse.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
