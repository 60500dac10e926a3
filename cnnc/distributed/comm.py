"""The communicator data-parallel training uses: MPI's COMM_WORLD through mpi4py, or a stand-in.

Training needs few collectives: a sum over ranks (the gradients, once per step), a gather of
small rows (batch-norm statistics), broadcasts from rank 0 (the run folder, the training state)
and an abort that ends every rank. `Comm` names exactly those; `MPIComm` implements them with
mpi4py's buffer methods (no pickling anywhere: structured data travels as JSON text), and tests
run several ranks as threads of one process with cnnc.testing.threadcomm.

mpi4py and MPICH come with the optional extra `mpi` (`pip install -e '.[mpi]'`); a cluster's own
MPI works as well when mpi4py is built against it.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from cnnc.errors import CnncError

MISSING_MPI = ("data-parallel training needs mpi4py and an MPI library: install cnnc's mpi "
               "extra (pip install -e '.[mpi]')")


class DistributedError(CnncError):
    """Data-parallel training cannot start, or its ranks disagree."""


class Comm(Protocol):
    rank: int
    size: int
    local_rank: int  # rank among the processes on this node (picks the device)
    local_size: int

    def allreduce_sum(self, buf: np.ndarray) -> None:
        """Replace `buf` (contiguous) on every rank by the sum of every rank's `buf`."""
        ...

    def allgather(self, row: np.ndarray) -> np.ndarray:
        """Every rank's `row` (same shape and dtype on all), stacked in rank order."""
        ...

    def bcast(self, buf: np.ndarray, root: int = 0) -> None:
        """Overwrite `buf` (contiguous) on every rank with root's."""
        ...

    def abort(self, status: int) -> None:
        """End every rank now (MPI_Abort): for a failure the others cannot know about."""
        ...


class MPIComm:
    """Comm over mpi4py's COMM_WORLD."""

    def __init__(self) -> None:
        try:
            from mpi4py import MPI
        except ImportError:
            raise DistributedError(MISSING_MPI) from None
        self._mpi = MPI
        self.world = MPI.COMM_WORLD
        self.rank = self.world.Get_rank()
        self.size = self.world.Get_size()
        node = self.world.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()

    def allreduce_sum(self, buf: np.ndarray) -> None:
        self.world.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)

    def allgather(self, row: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(row)
        out = np.empty((self.size, *row.shape), dtype=row.dtype)
        self.world.Allgather(row, out)
        return out

    def bcast(self, buf: np.ndarray, root: int = 0) -> None:
        self.world.Bcast(buf, root=root)

    def abort(self, status: int) -> None:
        self.world.Abort(status)


def mpi_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


# ---------------------------------------------------------------- helpers over any Comm


def any_rank(comm: Comm, flag: bool) -> bool:
    """True on every rank when `flag` is true on some rank."""
    buf = np.array([1.0 if flag else 0.0])
    comm.allreduce_sum(buf)
    return bool(buf[0] > 0)


def bcast_bytes(comm: Comm, data: bytes | None, root: int = 0) -> bytes:
    size = np.array([len(data) if comm.rank == root and data is not None else 0], np.int64)
    comm.bcast(size, root)
    buf = (np.frombuffer(data, np.uint8).copy() if comm.rank == root and data is not None
           else np.empty(int(size[0]), np.uint8))
    comm.bcast(buf, root)
    return buf.tobytes()


def bcast_json(comm: Comm, obj: Any = None, root: int = 0) -> Any:
    """Root's `obj` (plain JSON data) on every rank."""
    text = json.dumps(obj).encode() if comm.rank == root else None
    return json.loads(bcast_bytes(comm, text, root).decode())


def allgather_json(comm: Comm, obj: Any) -> list[Any]:
    """Every rank's `obj` (plain JSON data), in rank order."""
    data = np.frombuffer(json.dumps(obj).encode(), np.uint8)
    sizes = comm.allgather(np.array([data.size], np.int64))[:, 0]
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[:data.size] = data
    rows = comm.allgather(padded)
    return [json.loads(rows[r, :sizes[r]].tobytes().decode()) for r in range(comm.size)]


def bcast_arrays(comm: Comm, arrays: dict[str, np.ndarray] | None,
                 root: int = 0) -> dict[str, np.ndarray]:
    """Root's named arrays on every rank (the training state: a few MB, once per run)."""
    header = None
    if comm.rank == root:
        arrays = {k: np.asarray(v, order="C") for k, v in (arrays or {}).items()}
        header = [[k, list(v.shape), v.dtype.str] for k, v in arrays.items()]
    header = bcast_json(comm, header, root)
    out = {}
    for name, shape, dtype in header:
        buf = arrays[name] if comm.rank == root else np.empty(shape, np.dtype(dtype))
        comm.bcast(buf, root)
        out[name] = buf
    return out
