"""Training on several processes: `torchrun` starts one process per GPU (or several on a CPU), the processes
join one process group, and DistributedDataParallel all-reduces the gradients. The training loop in train.py is
the same for one process and for many; this module holds the few pieces that differ.

torchrun tells each process who it is through RANK, LOCAL_RANK and WORLD_SIZE (and where to meet through
MASTER_ADDR and MASTER_PORT). The backend is nccl for CUDA tensors and gloo for CPU ones. Every collective has a
finite timeout, so a process whose peer vanished without closing its connections fails instead of waiting
forever; a peer that dies outright closes its sockets and the collective fails at once.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist

from facealgebra.devices import select_device
from facealgebra.errors import FaceAlgebraError

# Long enough for one process to decode the data into the cache while the others wait at their first
# collective; short enough that a hung run ends on its own.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Ranks:
    """Which process this is: `rank` among `world_size` in all, `local_rank` among those on this machine."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, samples and metrics, and shows progress."""
        return self.rank == 0


def launched_ranks() -> Ranks:
    """This process's place, from the environment torchrun sets; a plain run is rank 0 of 1."""
    return Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                 int(os.environ.get("WORLD_SIZE", 1)))


def rank_device(name: str, ranks: Ranks) -> torch.device:
    """--device for this process: under torchrun, `cuda` (or `auto` on a CUDA machine) means the GPU numbered
    LOCAL_RANK, so each process on a machine takes its own."""
    device = select_device(name)
    if ranks.world_size == 1:
        return device
    if device.type == "mps":
        raise FaceAlgebraError(f"--device {name}: training on several processes runs on cuda or cpu, not mps")
    if device.type == "cuda":
        if device.index is not None:
            raise FaceAlgebraError(f"--device {name}: under torchrun each process takes the GPU numbered by its "
                                   "LOCAL_RANK; pass --device cuda")
        if ranks.local_rank >= torch.cuda.device_count():
            raise FaceAlgebraError(f"LOCAL_RANK {ranks.local_rank}: this machine has {torch.cuda.device_count()} "
                                   "CUDA device(s); start at most that many processes per node")
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def process_group(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Join the other processes for the duration of the block (nothing to join for a single process)."""
    if ranks.world_size == 1:
        yield
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank,
                            world_size=ranks.world_size, timeout=COLLECTIVE_TIMEOUT)
    try:
        yield
        # A clean finish waits for every process before tearing down: a process that left while rank 0 was still
        # saving its last checkpoint sometimes died in gloo's teardown ("terminate called", exit -6).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The module to run forward and backward through: DistributedDataParallel when there are several
    processes (it starts every process from rank 0's weights and averages the gradients), else the model."""
    if ranks.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def average(values: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The mean of `values` over all processes (no gradient)."""
    if ranks.world_size == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / ranks.world_size


class _GatherRows(torch.autograd.Function):
    """All processes' rows, in rank order, with gradients flowing back to every process's own rows."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        ctx.rank, ctx.count = rank, rows.shape[0]
        parts = [torch.empty_like(rows) for _ in range(world_size)]
        dist.all_gather(parts, rows.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # Every process's loss may depend on every row: a row's gradient is the sum over processes.
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.count:(ctx.rank + 1) * ctx.count], None, None


def gather_rows(rows: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Concatenate `rows` (N, ...) from every process into (world_size * N, ...), differentiably."""
    if ranks.world_size == 1:
        return rows
    return _GatherRows.apply(rows, ranks.rank, ranks.world_size)
