"""Data-parallel training over MPI: 2 ranks with B/2 images each equal one process with batch B."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convscope.training import read_checkpoint
from convscope.training.distributed import Single, shard, under_mpi

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install 'convscope[mpi]')")


def _train(*argv, workers: int = 1, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "convscope", "train", *map(str, argv), "--quiet"]
    if workers > 1:
        command += ["--workers", str(workers)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def _weights(path) -> dict[str, np.ndarray]:
    _, arrays = read_checkpoint(path)
    return {k: v for k, v in arrays.items() if not k.startswith("optim/")}


def test_shards_cover_a_batch_once_with_sizes_within_one():
    idx = np.arange(11)
    parts = [shard(idx, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), idx) and sorted(map(len, parts)) == [3, 4, 4]
    assert not under_mpi() and Single().size == 1


def test_two_ranks_equal_one_process_with_the_global_batch(mnist_dir, tmp_path):
    common = ["--data", mnist_dir, "--epochs", "2", "--batch-size", "64", "--limit", "448", "--test-limit", "100",
              "--lr", "0.02"]
    one = _train(*common, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = _train(*common, "--out", tmp_path / "two", workers=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("test accuracy") == 1                        # rank 0 alone speaks
    a, b = _weights(tmp_path / "one" / "model.npz"), _weights(tmp_path / "two" / "model.npz")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-5, err_msg=name)
    m1, m2 = (read_checkpoint(tmp_path / d / "checkpoint.npz")[0]["history"] for d in ("one", "two"))
    assert [h["train_loss"] for h in m2] == pytest.approx([h["train_loss"] for h in m1], rel=1e-4)
    assert not (tmp_path / "two-2").exists()


def test_an_interrupted_run_resumes_bit_identically_on_two_ranks_and_closely_on_one(mnist_dir, tmp_path):
    import signal
    import time
    common = ["--data", mnist_dir, "--batch-size", "64", "--limit", "2048", "--test-limit", "64", "--epochs", "4"]
    full = _train(*common, "--out", tmp_path / "full", workers=2)
    assert full.returncode == 0, full.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "convscope", "train", *map(str, common), "--quiet",
                             "--out", str(tmp_path / "cut"), "--workers", "2"], env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    ckpt, deadline = tmp_path / "cut" / "checkpoint.npz", time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)                                  # Ctrl-C reaches every rank
    proc.communicate(timeout=60)
    epochs_done = len(read_checkpoint(ckpt)[0]["history"])
    assert 1 <= epochs_done < 4 and not (tmp_path / "cut" / "model.npz").exists()
    shutil.copytree(tmp_path / "cut", tmp_path / "cut1")
    resumed = _train("--resume", tmp_path / "cut", workers=2)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _weights(tmp_path / "full" / "model.npz"), _weights(tmp_path / "cut" / "model.npz")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)    # same N: bit-identical
    one = _train("--resume", tmp_path / "cut1")                           # any N: the same run
    assert one.returncode == 0, one.stderr
    c = _weights(tmp_path / "cut1" / "model.npz")
    for name in a:
        np.testing.assert_allclose(c[name], a[name], rtol=1e-3, atol=1e-4, err_msg=name)


def test_a_failing_rank_ends_every_rank_with_one_line(tmp_path):
    bad = _train("--data", tmp_path / "missing", "--epochs", "1", workers=2, timeout=60)
    assert bad.returncode != 0
    assert "data directory not found" in bad.stderr and "Traceback" not in bad.stderr
