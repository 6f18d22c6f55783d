"""The objective learning minimises, one step of it, and its value on a fixed held-out set.

The objective, exactly: for each sample b, z_b ~ G.sample_z, i_b ~ U{0..N-1},
eta_b ~ U[-eta, eta]; Q = Gram-Schmidt of A in every forward (orthonormal_directions: for
N = z_dim the last row is the oriented complement of the others); w0_b = eta_b e_{i_b};
f_b(w) = G(z_b + w Q); the penalty is the mean over (b, C, H, W) of the unbiased variance over k
Rademacher vectors v (all N coordinates) of (f_b(w0 + eps v) - 2 f_b(w0) + f_b(w0 - eps v)) / eps^2.
Only A is optimised (Adam); the generator is frozen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from direction_finder.config import LearnConfig
from direction_finder.generators.base import Checkpointable, Layered
from direction_finder.learning.distributed import DistContext
from direction_finder.method.orthonormal import orthonormal_directions
from direction_finder.method.penalty import hessian_penalty, rademacher

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator


@contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off while the penalty is computed: its ~1e-3 error is amplified 100x by / eps^2."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def outputs(generator: Generator, latents: Tensor, layer: str | None) -> Tensor:
    """What the penalty is taken on: the images, or the activation of a named layer."""
    if layer is None:
        return generator(latents)
    assert isinstance(generator, Layered)  # config.check_layer refused a layer elsewhere
    return generator.features(latents, layer)


def direction_penalty(
    generator: Generator,
    Q: Tensor,
    z: Tensor,
    index: Tensor,
    eta: Tensor,
    *,
    k: int = 2,
    epsilon: float = 0.1,
    reduction: str = "mean",
    vectors: Tensor | None = None,
    rng: torch.Generator | None = None,
    chunk_size: int | None = None,
    layer: str | None = None,
) -> Tensor:
    """Hessian Penalty w.r.t. w of f_b(w) = G(z_b + w Q) at w0_b = eta_b e_{index_b}.

    Q (N, z_dim) orthonormal rows; z (B, z_dim); index (B,) long; eta (B,); vectors (k, B, N).
    """
    batch, n = z.shape[0], Q.shape[0]
    w0 = torch.zeros(batch, n, dtype=Q.dtype, device=Q.device)  # (B, N)
    w0[torch.arange(batch, device=Q.device), index.to(Q.device)] = eta.to(Q.device, Q.dtype)

    def f(w: Tensor) -> Tensor:  # w: (m * B, N), stacked copies of the batch
        latents = z.repeat(w.shape[0] // batch, 1) + w @ Q  # (m * B, z_dim)
        return outputs(generator, latents, layer)

    if vectors is not None:
        vectors = vectors.to(Q.device, Q.dtype)
    with strict_fp32():
        penalty = hessian_penalty(
            f, w0, k=k, epsilon=epsilon, reduction=reduction, vectors=vectors, generator=rng, chunk_size=chunk_size
        )
    assert isinstance(penalty, Tensor)  # f returns one tensor, so its penalty is one tensor
    return penalty


@dataclass(frozen=True)
class Batch:
    """One step's random draws: latents, directions, base-point magnitudes, Rademacher vectors."""

    z: Tensor  # (B, z_dim)
    index: Tensor  # (B,) long, uniform over 0..N-1
    eta: Tensor  # (B,) uniform in [-eta, eta]
    vectors: Tensor  # (k, B, N) +-1


def _draws(
    generator: Generator, samples: int, num_directions: int, k: int, eta: float, rng: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The draws of `samples` samples, in this order from `rng`: latents (S, z_dim), a direction
    each (S,), base-point magnitudes in [-eta, eta] (S,) and Rademacher vectors (k, S, N). A
    step's batch and the held-out set are both drawn so."""
    z = generator.sample_z(samples, rng)
    index = torch.randint(num_directions, (samples,), generator=rng)
    eta_values = (torch.rand(samples, generator=rng) * 2 - 1) * eta
    vectors = rademacher((k, samples, num_directions), generator=rng)
    return z, index, eta_values, vectors


def draw_batch(
    generator: Generator, config: LearnConfig, rng: torch.Generator, dist: DistContext | None = None
) -> Batch:
    """Draw a step's randomness, in a fixed order, from the one CPU generator `rng`.

    Under torch.distributed every rank draws the whole global batch from the same stream and
    keeps its own contiguous slice: together the ranks see exactly a single process's batch.
    """
    batch = config.batch_size
    z, index, eta, vectors = _draws(generator, batch, _directions(config), config.k, config.eta, rng)
    if dist is None or dist.world == 1:
        return Batch(z, index, eta, vectors)
    part = slice(dist.rank * batch // dist.world, (dist.rank + 1) * batch // dist.world)
    return Batch(z[part], index[part], eta[part], vectors[:, part])


def train_step(
    generator: Generator,
    A: Tensor,
    optimizer: torch.optim.Optimizer,
    config: LearnConfig,
    batch: Batch,
    dist: DistContext | None = None,
) -> Tensor:
    """One Adam step on the objective; returns the (detached) loss. A non-finite loss is
    returned without a step, so the caller can stop with A untouched.

    Under torch.distributed the loss and the gradient of A are averaged over the ranks' equal
    slices (= the global batch's mean loss and its gradient) before the step. With
    config.micro_batch below the batch, the samples go through in passes whose gradients are
    summed at Q before one backward through Gram-Schmidt: the same gradient, to rounding.
    """
    Q = orthonormal_directions(A)  # (N, z_dim): re-orthonormalised in every forward
    samples = batch.z.shape[0]
    micro = min(int(config.micro_batch or samples), samples)
    leaf = Q if micro == samples else Q.detach().requires_grad_()  # passes sum their gradients here
    loss = torch.zeros((), dtype=Q.dtype, device=Q.device)
    for start in range(0, samples, micro):
        part = slice(start, min(start + micro, samples))
        share = (part.stop - part.start) / samples  # the mean over the batch = the shares' sum
        value = _penalty_of(generator, leaf, batch, part, config)
        if micro == samples:
            loss = value
        else:  # this pass's graph is freed before the next pass is built
            (value * share).backward()
            loss = loss + value.detach() * share
    reported = loss.detach().clone()
    if dist is not None and dist.world > 1:
        dist.mean_(reported)  # every rank sees the same value, so all stop or step together
    if not torch.isfinite(reported):
        return reported
    optimizer.zero_grad(set_to_none=True)
    if micro == samples:
        loss.backward()
    else:
        Q.backward(leaf.grad)  # through Gram-Schmidt to A once, for the whole batch
    if dist is not None and dist.world > 1 and A.grad is not None:
        dist.mean_(A.grad)
    optimizer.step()
    return reported


def smaller_layout(config: LearnConfig, generator: Generator, samples: int) -> tuple[LearnConfig, str] | None:
    """What a step that ran out of memory tries next: half the perturbed batches per call, else
    half the samples per pass (of `samples`, the step's batch), else activation checkpointing
    (switched on in the generator); None when none is left. Each changes only how the same sum
    is computed, in that order of cost: smaller calls, then a recomputed forward. An
    out-of-memory error leaves A, Adam and the batch untouched (the gradient reaches A only at
    the end of the backward), so the same step can be taken again."""
    chunk, micro = int(config.chunk_size or 1), min(int(config.micro_batch or samples), samples)
    if chunk > 1:
        return dataclasses.replace(config, chunk_size=chunk // 2), f"`chunk_size` {chunk} -> {chunk // 2}"
    if micro > 1 and config.reduction == "mean":
        half = (micro + 1) // 2
        return dataclasses.replace(config, micro_batch=half), f"`micro_batch` {micro} -> {half}"
    if not config.checkpoint_activations and isinstance(generator, Checkpointable):
        generator.set_checkpointing(True)
        return dataclasses.replace(config, checkpoint_activations=True), "`checkpoint_activations` on"
    return None


@dataclass(frozen=True)
class HeldOut(Batch):
    """Learning's evaluation set: a batch's draws (E samples), drawn once from its own seed, so
    every evaluation sees the same z, i, eta and Rademacher vectors (compare's held-out data is
    evaluation/probes.py's)."""

    @classmethod
    def draw(cls, generator: Generator, num_directions: int, samples: int, k: int, eta: float, seed: int) -> HeldOut:
        return cls(*_draws(generator, samples, num_directions, k, eta, torch.Generator().manual_seed(seed)))


def heldout_penalty(
    generator: Generator,
    Q: Tensor,
    heldout: HeldOut,
    config: LearnConfig,
    batch_size: int | None = None,
    dist: DistContext | None = None,
) -> float:
    """The training objective on the held-out set (common random numbers), no gradients.

    Under torch.distributed each rank evaluates a share of the samples and the sums are reduced.
    """
    batch_size = batch_size or config.batch_size
    total, count = 0.0, heldout.z.shape[0]
    ranks, rank = (dist.world, dist.rank) if dist is not None else (1, 0)
    mine = range(rank * count // ranks, (rank + 1) * count // ranks)
    with torch.no_grad():
        for s in range(mine.start, mine.stop, batch_size):
            part = slice(s, min(s + batch_size, mine.stop))
            value = _penalty_of(generator, Q, heldout, part, config)
            if config.reduction == "mean":
                total += float(value) * heldout.z[part].shape[0]
            else:
                total = max(total, float(value))
    if dist is not None and ranks > 1:
        reduced = torch.tensor([total], dtype=torch.float64, device=Q.device)
        (dist.sum_ if config.reduction == "mean" else dist.max_)(reduced)
        total = float(reduced.item())
    return total / count if config.reduction == "mean" else total


def penalty_of(
    generator: Generator,
    Q: Tensor,
    draws: Batch,
    part: slice,
    *,
    k: int,
    epsilon: float,
    reduction: str,
    chunk_size: int | None,
    layer: str | None,
) -> Tensor:
    """The penalty of direction draws.index[s] at each sample s of `part` of a set of draws (a
    step's, the held-out set's, compare's): the one place learning and compare estimate it."""
    return direction_penalty(
        generator,
        Q,
        draws.z[part],
        draws.index[part],
        draws.eta[part],
        k=k,
        epsilon=epsilon,
        reduction=reduction,
        vectors=draws.vectors[:, part],
        chunk_size=chunk_size,
        layer=layer,
    )


def _penalty_of(generator: Generator, Q: Tensor, draws: Batch, part: slice, config: LearnConfig) -> Tensor:
    """penalty_of with config's estimator, layout and layer."""
    return penalty_of(
        generator, Q, draws, part, k=config.k, epsilon=config.epsilon, reduction=config.reduction,
        chunk_size=config.chunk_size, layer=config.layer,
    )  # fmt: skip


def _directions(config: LearnConfig) -> int:
    if config.num_directions is None:
        raise ValueError("the config is not resolved for a generator: call config.resolved(generator) first")
    return config.num_directions
