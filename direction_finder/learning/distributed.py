"""Data-parallel learning with PyTorch's own engine (torch.distributed), for torchrun.

Every rank draws the whole global batch from the same seeded stream and evaluates its own
contiguous slice, so a run on W ranks sees exactly the samples a single process would; the
gradients of A are averaged with an all-reduce (the loss is a mean over equal slices, so the
average of the ranks' gradients is the gradient of the global loss), and every rank applies the
same Adam step to the same A. Only rank 0 writes files and shows progress. Collectives carry a
timeout, and the outcome of anything only rank 0 does (writing a checkpoint) is agreed by all
ranks, so an error on one rank ends the others instead of leaving them waiting.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from direction_finder.errors import HpdirsError, UsageError

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torch.distributed job."""

    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean_(self, tensor: Tensor) -> Tensor:
        """All-reduce in place to the mean over ranks."""
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= self.world
        return tensor

    def sum_(self, tensor: Tensor) -> Tensor:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def max_(self, tensor: Tensor) -> Tensor:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def agree(self, ok: bool, device: torch.device) -> bool:
        """True only if every rank says ok (an all-reduce of the minimum)."""
        import torch.distributed as dist

        flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def broadcast(self, obj: Any) -> Any:
        """rank 0's obj on every rank."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def device(self) -> torch.device:
        return torch.device(f"cuda:{self.local_rank}") if self.backend == "nccl" else torch.device("cpu")


class RankFailed(HpdirsError):
    """Another rank failed; this one stops too."""


def world_from_env() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str = "auto", timeout_s: float | None = None) -> DistContext | None:
    """Join the torchrun job described by the environment (WORLD_SIZE > 1), else None.

    Backend nccl when the ranks use CUDA, gloo on CPU. The timeout (seconds; also
    $HPDIRS_DIST_TIMEOUT) bounds every collective.
    """
    world = world_from_env()
    if world <= 1:
        return None
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and str(device) in ("auto", "cuda")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"`device` {device}: CUDA is not available on this machine; use `device` cpu or auto")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    timeout = timeout_s if timeout_s is not None else float(os.environ.get("HPDIRS_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout))
    return DistContext(rank, world, local_rank, backend)


def shutdown(finished: bool = False) -> None:
    """Leave the job. After a run every rank finished, wait for the others first: a rank that
    exits while another (rank 0, writing the last files) still holds gloo connections to it
    could make that rank's gloo thread abort the process. After a failure, leave at once
    (torchrun ends the others)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def job_from_env(device: str = "auto") -> Iterator[DistContext | None]:
    """The torchrun job this process belongs to (None outside one), left when the block ends:
    after every rank finished, together; after a failure, at once."""
    dist = init_from_env(device)
    finished = False
    try:
        yield dist
        finished = True
    finally:
        if dist is not None:
            shutdown(finished)
