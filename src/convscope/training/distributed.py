"""Data-parallel training over MPI, with the semantics of Horovod and PyTorch's DDP.

``mpiexec -n N convscope train ...`` (or ``convscope train --workers N ...``, which starts
``mpiexec`` itself) runs N ranks of the same training. :func:`world` finds out whether this
process is one of several MPI ranks (mpi4py with the ``mpich`` wheel: ``pip install
"convscope[mpi]"``); alone, it is a :class:`Single` that does nothing at all, so the one-process
path is unchanged. What the trainer does with a world of N ranks:

- rank 0 broadcasts the initial (or resumed) weights, and again at the end of every epoch, so
  the ranks can never drift apart through rounding;
- every rank draws the same permutation of each epoch (same seed and epoch) and takes its
  contiguous shard of every global batch (``--batch-size`` keeps its meaning: the global
  batch); every rank makes the same number of steps;
- the gradients of a step are averaged by one Allreduce over one fused float buffer, weighted by
  shard size, so N ranks compute exactly the gradient of the global batch;
- batch normalisation uses each rank's shard statistics during training (as DDP without
  SyncBatchNorm), and the running statistics are averaged over the ranks at the end of every
  epoch, before evaluation and saving (synchronising every step would add one Allreduce per BN
  layer per step; the shard statistics are the usual trade-off);
- dropout and augmentation draw from per-rank generators derived from (seed, epoch, rank);
- the test split is evaluated in shards and the confusion matrices summed; only rank 0 writes
  checkpoints and metrics, and ``--resume`` works with any N (nothing in a checkpoint is per rank);
- a rank that fails ends every rank (``MPI_Abort``) after printing its one line, not a hang.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["Single", "MPIWorld", "world", "under_mpi", "shard", "average_gradients", "synchronise"]

# Variables the MPI launchers set in every rank's environment (MPICH's hydra, Open MPI, Slurm's PMI).
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE")


def under_mpi() -> bool:
    """Whether this process was started by an MPI launcher as one of several ranks."""
    for var in _SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


class Single:
    """The world of one process: every collective is the identity."""

    rank, size = 0, 1

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def broadcast(self, arrays: list[np.ndarray]) -> None:
        """Make every rank's ``arrays`` equal to rank 0's, in place."""

    def abort(self, code: int) -> None:
        """End every other rank (nothing to do alone)."""


class MPIWorld(Single):
    """``MPI.COMM_WORLD`` through mpi4py."""

    def __init__(self) -> None:
        try:
            from mpi4py import MPI
        except ImportError:
            raise ValueError('this process was started by mpiexec but mpi4py is missing: '
                             'pip install "convscope[mpi]"') from None
        self._mpi = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        return buffer

    def broadcast(self, arrays: list[np.ndarray]) -> None:
        for array in arrays:
            self.comm.Bcast(array, root=0)

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


def world() -> Single:
    """This process's world: :class:`MPIWorld` under an MPI launcher with several ranks, else
    :class:`Single` (mpi4py is imported only in the first case)."""
    return MPIWorld() if under_mpi() else Single()


def shard(indices: np.ndarray, rank: int, size: int) -> np.ndarray:
    """Rank ``rank``'s contiguous share of ``indices``: sizes differ by at most one."""
    n = len(indices)
    start, stop = n * rank // size, n * (rank + 1) // size
    return indices[start:stop]


def average_gradients(model, comm: Single, loss_sum: float, correct: int, n: int) -> tuple[float, int, int]:
    """Average a step's gradients over the ranks, weighted by shard size ``n`` (one Allreduce of one
    fused float32 buffer that also carries the loss sum, correct count and images); returns the
    global (loss sum, correct, images). Alone, it returns its arguments and touches nothing."""
    if comm.size == 1:
        return loss_sum, correct, n
    slots = [(module, key) for _, module, key in model.parameter_slots()]
    sizes = [module.params[key].size for module, key in slots]
    buffer = np.zeros(sum(sizes) + 3, dtype=np.float32)
    offset = 0
    for (module, key), size in zip(slots, sizes):
        if n and key in module.grads:
            buffer[offset:offset + size] = module.grads[key].ravel()
            buffer[offset:offset + size] *= n
        offset += size
    buffer[offset:] = (loss_sum, correct, n)
    comm.allreduce_sum(buffer)
    total = int(round(buffer[-1]))
    offset = 0
    for (module, key), size in zip(slots, sizes):
        p = module.params[key]
        module.grads[key] = (buffer[offset:offset + size] / total).reshape(p.shape).astype(p.dtype, copy=False)
        offset += size
    return float(buffer[-3]), int(round(buffer[-2])), total


def synchronise(model, comm: Single) -> None:
    """Rank 0's weights everywhere, and the ranks' mean batch-norm running statistics."""
    if comm.size == 1:
        return
    for value in model.named_buffers().values():
        if np.issubdtype(value.dtype, np.floating):
            total = comm.allreduce_sum(np.ascontiguousarray(value, dtype=np.float64))
            value[...] = total / comm.size
    comm.broadcast(list(model.named_parameters().values()))
