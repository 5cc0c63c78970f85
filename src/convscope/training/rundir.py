"""Run directories are never lost or mixed: refuse to train over a run, lock against a second one.

A run directory holds ``model.npz``, ``metrics.json`` and ``checkpoint.npz`` (see
:class:`~convscope.training.Trainer`). Training into a directory that already holds a run
is refused unless the caller says ``overwrite`` (or resumes it); without an explicit
directory, :func:`fresh_run_dir` picks ``runs/MODEL-DATA``, then ``-2``, ``-3``, ... A lock
file (``.convscope.lock``, holding the process id) refuses a second concurrent run in the
same directory; a lock left by a process that no longer exists is taken over.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["RUN_FILES", "RunDirError", "RunLock", "holds_run", "fresh_run_dir", "check_run_dir"]

RUN_FILES = ("model.npz", "metrics.json", "checkpoint.npz")
LOCK_NAME = ".convscope.lock"


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (it holds a run, it is locked, ...)."""


def holds_run(directory) -> list[str]:
    """The run files present in ``directory`` (empty if none, or if it does not exist)."""
    directory = Path(directory)
    return [name for name in RUN_FILES if (directory / name).exists()]


def check_run_dir(directory, *, overwrite: bool = False) -> Path:
    """``directory`` as a Path if a new run may be written there; RunDirError otherwise."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunDirError(f"--out '{directory}' is a file, not a directory; choose a directory for the run")
    present = holds_run(directory)
    if present and not overwrite:
        raise RunDirError(f"'{directory}' already holds a run ({', '.join(present)}); choose another --out, "
                          f"add --overwrite to replace it, or --resume {directory} to continue it")
    return directory


def fresh_run_dir(base) -> Path:
    """``base`` if it holds no run, else the first of ``base-2``, ``base-3``, ... that holds none."""
    base = Path(base)
    candidate, k = base, 1
    while holds_run(candidate) or (candidate.exists() and not candidate.is_dir()) or _locked(candidate):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                 # someone else's process: alive
        return True
    return True


def _lock_owner(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _locked(directory: Path) -> bool:
    owner = _lock_owner(directory / LOCK_NAME)
    return owner is not None and owner != os.getpid() and _pid_alive(owner)


class RunLock:
    """``with RunLock(directory):`` — this process is the only one training into ``directory``."""

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _lock_owner(self.path)
                if owner is not None and owner != os.getpid() and _pid_alive(owner):
                    raise RunDirError(f"'{self.directory}' is in use by another convscope run (process {owner}); "
                                      f"wait for it to finish or choose another --out") from None
                self.path.unlink(missing_ok=True)       # a stale lock: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return
        raise RunDirError(f"could not lock '{self.directory}' (another run keeps taking it?)")

    def release(self) -> None:
        if self.held:
            try:
                self.path.unlink()
            except OSError as err:               # pragma: no cover - a vanished directory
                if err.errno != errno.ENOENT:
                    raise
            self.held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
