"""Run a file reader on many (hostile) files in one child process, bounded in memory and time.

A crash, a hang or a memory flood of the reader then fails the test that called it, not
the machine running the suite. Import it as ``from fuzz.harness import run_reader_in_child``
(``tests/`` is on ``sys.path`` through its conftest).

The child first caps its address space (``RLIMIT_AS``) and disables core dumps, then
defines ``read(path)`` by running ``code``, calls it on each path and prints one JSON line
per file: ``{"path", "outcome", "message", "lines"}`` where ``outcome`` is ``"ok"`` or the
name of the exception class that escaped (``message``: its text cut to 300 characters,
``lines``: how many lines the whole text has). A
child that dies or runs past ``timeout`` raises ``AssertionError`` naming the file it was
reading.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

__all__ = ["run_reader_in_child", "GIB"]

GIB = 2 ** 30

_PROLOGUE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
"""

_LOOP = """
for _path in json.loads(sys.stdin.read()):
    try:
        read(_path)
        _outcome, _text = "ok", ""
    except BaseException as _err:   # report everything, MemoryError and SystemExit included
        _outcome, _text = type(_err).__name__, str(_err)
    print(json.dumps({"path": _path, "outcome": _outcome, "message": _text[:300],
                      "lines": len(_text.splitlines())}), flush=True)
"""


def run_reader_in_child(code: str, paths: list[str], timeout: float = 60.0,
                        address_space: int = 2 * GIB) -> list[dict]:
    """One dict per path (in order) from running ``read(path)``, defined by ``code``, in a child.

    ``code`` is Python source that defines ``read``; ``timeout`` (seconds) bounds the whole
    child and ``address_space`` (bytes) its virtual memory.
    """
    source = (_PROLOGUE.format(limit=int(address_space)) + textwrap.dedent(code) + _LOOP)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run([sys.executable, "-c", source], input=json.dumps([str(p) for p in paths]),
                              capture_output=True, text=True, timeout=timeout, env=env)
        stdout, stderr, status = done.stdout, done.stderr, f"exit status {done.returncode}"
        failed = done.returncode != 0
    except subprocess.TimeoutExpired as err:
        stdout, stderr, status, failed = _text(err.stdout), _text(err.stderr), f"timed out after {timeout} s", True
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if failed or len(results) != len(paths):
        at = paths[len(results)] if len(results) < len(paths) else "after the last file"
        raise AssertionError(f"the reader child {status} while reading {at} "
                             f"({len(results)} of {len(paths)} files done); stderr: {stderr[-2000:]}")
    return results


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
