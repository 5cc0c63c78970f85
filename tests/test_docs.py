"""The documentation cannot rot: the README's Python blocks and every docstring example run here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import convscope

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(convscope.__path__, "convscope.")
                  if not m.name.endswith("__main__"))


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    blocks = _BLOCK.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 2, "the README should show the library from Python"
    monkeypatch.chdir(tmp_path)               # the blocks write runs/ relative to where they run
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except ModuleNotFoundError as err:    # pragma: no cover - an optional extra is missing
            pytest.skip(f"README block {i + 1} needs {err.name}")


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:        # pragma: no cover - an optional extra is missing
        pytest.skip(f"{name} needs {err.name}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={"np": __import__("numpy"), **vars(module)}):
        if test.examples and Path(test.filename or "").resolve().is_relative_to(Path(convscope.__file__).parent):
            runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name} (see the output above)"
