"""Data-parallel throughput: N MPI ranks with cores/N BLAS threads each against one process.

    python benchmarks/bench_mpi.py [--models resnet20,lenet5] [--workers 2] [--rounds 2]

Runs ``convscope train`` on the embedded MNIST as a user would, once as one process with every
core for its BLAS and once with ``--workers N`` (each rank gets cores / N threads), alternating,
and reads the training pass's images per second from each run's metrics.json (evaluation and
start-up excluded). Prints the best of ``--rounds`` for each and the speed-up. Needs
``pip install ".[mpi]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

LIMITS = {"resnet20": 7680, "lenet5": 60000}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet20,lenet5")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    return p.parse_args()


def run(model: str, workers: int, batch: int, out: Path) -> float:
    threads = str(os.cpu_count() or 1)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                            "MKL_NUM_THREADS")}
    if workers == 1:
        env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    cmd = [sys.executable, "-m", "convscope", "train", "--model", model, "--epochs", "1", "--batch-size",
           str(batch), "--limit", str(LIMITS.get(model, 7680)), "--test-limit", "500", "--quiet",
           "--out", str(out), "--overwrite"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    epoch = metrics["history"][-1]
    return float(epoch["images_per_second"])


def main() -> None:
    args = parse()
    cores = os.cpu_count() or 1
    print(f"{cores} cores; one process with {cores} BLAS threads vs {args.workers} ranks with "
          f"{max(1, cores // args.workers)} each; training images/s, best of {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            best = {1: 0.0, args.workers: 0.0}
            for _ in range(args.rounds):
                for workers in best:
                    best[workers] = max(best[workers], run(model, workers, args.batch_size, Path(tmp) / model))
            one, many = best[1], best[args.workers]
            print(f"{model:10s} 1 process {one:8.0f} img/s   {args.workers} ranks {many:8.0f} img/s   "
                  f"speed-up {many / one:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
