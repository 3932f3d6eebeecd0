"""The only module that knows about processes: ranks, sharding, reductions, gathers.

Under ``accelerate launch`` (or ``torchrun``) with more than one process, an
``accelerate.Accelerator`` is created; without a GPU it is created with
``cpu=True`` so that the processes really form a gloo group (plain
``Accelerator()`` under a multi-process launcher on a CPU-only machine gives
processes that each think they are alone). In a single process nothing is
imported from accelerate.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from ..core.kernels import Kernel
from ..core.moments import Tile, moment_sums

T = TypeVar("T")


def launched_world_size() -> int:
    """Number of processes the launcher started (``WORLD_SIZE``), 1 when not launched."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank as the launcher set it (``RANK``), 0 when not launched; readable
    before any process group exists (the CLI claims the output folder on rank 0 only)."""
    return int(os.environ.get("RANK", "0"))


@dataclass
class DistContext:
    """Rank, world size and device of this process, with collective helpers."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    accelerator: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (float64 stays float64)."""
        if self.world_size == 1:
            return t
        import torch.distributed as dist

        buf = t.to(self.device).clone()
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.to(t.device)

    def gather_objects(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if self.world_size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_context(device: str | None = None, timeout_s: float | None = None) -> DistContext:
    """A :class:`DistContext` for this process; starts accelerate when launched with > 1 process.

    ``timeout_s`` is the process group's timeout (every collective and barrier); the
    rank-0-only stages come after the last collective, so it never has to cover them.
    """
    if launched_world_size() <= 1:
        dev = (
            torch.device(device)
            if device
            else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        return DistContext(device=dev)
    from datetime import timedelta

    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    cpu = (device == "cpu") or not torch.cuda.is_available()
    handlers = [InitProcessGroupKwargs(timeout=timedelta(seconds=timeout_s))] if timeout_s else []
    acc = Accelerator(cpu=cpu, kwargs_handlers=handlers)
    return DistContext(
        rank=acc.process_index, world_size=acc.num_processes, device=acc.device, accelerator=acc
    )


def split_evenly(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Round-robin share of ``items`` for ``rank`` (deterministic, covers each item once)."""
    return list(items[rank::world_size])


def distributed_moment_sums(
    ctx: DistContext,
    models: Sequence[Kernel],
    prior: Kernel,
    temperatures: Sequence[float],
    tiles: Sequence[Tile],
    *,
    progress: Callable[[int], None] | None = None,
    num_blocks: int = 0,
    block_edge: int = 0,
) -> torch.Tensor:
    """:func:`~tp_harness.core.moments.moment_sums` with the tiles split over ranks and
    summed (per block pair when ``num_blocks``: every rank's block sums are reduced)."""
    mine = split_evenly(tiles, ctx.rank, ctx.world_size)
    local = moment_sums(
        models,
        prior,
        temperatures,
        mine,
        progress=progress,
        num_blocks=num_blocks,
        block_edge=block_edge,
    ).cpu()
    return ctx.all_reduce_sum(local)
