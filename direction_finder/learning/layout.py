"""Fitting a learning step into a memory budget (a batch of images: memory.py).

A learning step keeps, for the backward, the graph of every perturbed image of the samples in
one pass, and each generator call needs working memory for the images in it. So a step's peak
above what was resident before it is close to

    2k * micro_batch * kept  +  chunk_size * micro_batch * call        (MiB)

with `kept` the MiB the graph keeps per image and `call` the transient MiB per image of a call
(against steps of more samples measured in fresh processes, the model stays between half and
SAFETY times what they take: a call's overhead is shared by its images). The
two coefficients are measured on the device itself, from two small steps of one sample (one
perturbed batch per call, then as many per call as cannot pass the budget; after a step not
counted), once without activation checkpointing and, only where that cannot fit, once with it.
The budget bounds the learning steps; the first calibration steps, one sample in calls of one
perturbed batch, are the one thing that may pass it (on CUDA an out-of-memory error there only
rules that family out). The layout chosen is the one that fits with SAFETY to spare and runs
fastest: no recomputed forward if any layout fits without it, then the most images per call.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from direction_finder.config import LearnConfig
from direction_finder.errors import HpdirsNote, UsageError
from direction_finder.generators.base import Checkpointable
from direction_finder.learning.objective import Batch, direction_penalty
from direction_finder.memory import CALIBRATION_SEED, SAFETY, PeakMeter, in_use_mb
from direction_finder.method.penalty import rademacher
from direction_finder.validation import parse_memory

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator


@dataclass(frozen=True)
class StepMemory:
    """The measured model of one layout family (with or without checkpointing), in MiB."""

    base: float  # in use before a step: the weights, torch itself (CPU) and whatever else is held
    kept: float  # kept for the backward, per perturbed image of a pass
    call: float  # working memory of a generator call, per image in it
    checkpointed: bool

    def step(self, k: int, micro_batch: int, chunk_size: int) -> float:
        """The modelled peak of a step above `base`."""
        return 2 * k * micro_batch * self.kept + chunk_size * micro_batch * self.call


def _one_step_mb(generator: Generator, config: LearnConfig) -> float:
    """The peak of one forward and backward of the penalty on one sample, above what was in use;
    infinite where the device ran out of memory."""
    rng = torch.Generator().manual_seed(CALIBRATION_SEED)
    n, z_dim = int(config.num_directions or generator.z_dim), int(generator.z_dim)
    batch = Batch(generator.sample_z(1, rng), torch.zeros(1, dtype=torch.long), torch.ones(1),
                  rademacher((config.k, 1, n), generator=rng))  # fmt: skip
    Q = torch.eye(n, z_dim, device=generator.device).requires_grad_()
    meter = PeakMeter(generator.device)
    try:
        with meter:
            loss = direction_penalty(generator, Q, batch.z, batch.index, batch.eta, k=config.k,
                                     epsilon=config.epsilon, vectors=batch.vectors, chunk_size=config.chunk_size,
                                     layer=config.layer)  # fmt: skip
            loss.backward()
            del loss
    except torch.OutOfMemoryError:
        return math.inf
    finally:
        if meter.device.type == "cuda":
            torch.cuda.empty_cache()
    return meter.used_mb


def calibrate(generator: Generator, config: LearnConfig, checkpointed: bool, budget_mb: float = math.inf) -> StepMemory:
    """Measure `kept` and `call` from steps of one sample: one perturbed batch per call, then the
    most per call that cannot pass budget_mb (a call of c images needs at most c times one
    image's step), after one step that is not counted (the first pays for one-time allocations).
    Where no second step is safe, kept = 0 and call = the step: exact for that step, and for a
    layout of m samples and c per call, m c times it, which bounds it from above."""
    if not PeakMeter(generator.device).ok:
        raise UsageError(
            f"`max_memory`: memory cannot be measured on {generator.device} here (it needs CUDA, or Linux "
            "for a CPU); set `chunk_size`, `micro_batch` and `checkpoint_activations` yourself"
        )
    if isinstance(generator, Checkpointable):
        generator.set_checkpointing(checkpointed)
    widest = 2 * config.k
    _one_step_mb(generator, dataclasses.replace(config, chunk_size=1))  # one-time allocations: not counted
    base = in_use_mb(torch.device(generator.device))
    one = _one_step_mb(generator, dataclasses.replace(config, chunk_size=1))
    safe = [c for c in _halvings(widest) if c > 1 and base + SAFETY * c * one <= budget_mb]
    if not safe or not math.isfinite(one):
        return StepMemory(base, 0.0, one, checkpointed)
    wide = _one_step_mb(generator, dataclasses.replace(config, chunk_size=safe[0]))
    call = max(wide - one, 0.0) / (safe[0] - 1)  # each further image in the call
    kept = max(one - call, 0.0) / widest
    return StepMemory(base, kept, call, checkpointed)


def choose_layout(models: list[StepMemory], budget_mb: float, config: LearnConfig) -> LearnConfig | None:
    """The fastest layout whose step fits the budget: no recomputed forward where that fits,
    then the most images per generator call, then the fewest samples per pass. None: none fits."""
    k, samples = config.k, config.batch_size
    micros = _halvings(samples) if config.reduction == "mean" else [samples]  # a maximum cannot be split
    for model in sorted(models, key=lambda m: m.checkpointed):
        options = [(chunk * micro, chunk, micro) for micro in micros for chunk in _halvings(2 * k)]
        for _, chunk, micro in sorted(options, key=lambda o: (-o[0], o[2])):
            if model.base + SAFETY * model.step(k, micro, chunk) <= budget_mb:
                return dataclasses.replace(config, chunk_size=chunk, micro_batch=micro, max_memory=None,
                                           checkpoint_activations=model.checkpointed)  # fmt: skip
    return None


def fit_layout(generator: Generator, config: LearnConfig, samples: int) -> LearnConfig:
    """The layout learning steps run with, the generator's checkpointing set to it: config's
    own, or, under config.max_memory, chunk_size, micro_batch and checkpointing chosen to fit
    it (said in one line). `samples`: the step's batch in this process."""
    chosen = config
    if config.max_memory is not None:
        chosen = _fitted(generator, dataclasses.replace(config, batch_size=samples), parse_memory(config.max_memory))
        chosen = dataclasses.replace(chosen, batch_size=config.batch_size)
    if isinstance(generator, Checkpointable):
        generator.set_checkpointing(chosen.checkpoint_activations)
    return chosen


def _fitted(generator: Generator, config: LearnConfig, budget: float) -> LearnConfig:
    models = [] if config.checkpoint_activations else [calibrate(generator, config, False, budget)]
    chosen = choose_layout(models, budget, config) if models else None
    if chosen is None and isinstance(generator, Checkpointable):
        models.append(calibrate(generator, config, True, budget))
        chosen = choose_layout(models[-1:], budget, config)
    if chosen is None:
        smallest = models[-1]
        need = smallest.base + SAFETY * smallest.step(config.k, 1, 1)
        needs = f"needs about {_gib(need)} here" if math.isfinite(need) else "does not fit this device"
        raise UsageError(
            f"`max_memory` {config.max_memory}: even one sample per pass and one perturbed batch per call "
            f"{needs} ({_gib(smallest.base)} of it in use before the step); give more memory"
        )
    model = models[-1] if chosen.checkpoint_activations else models[0]
    micro, chunk = int(chosen.micro_batch or 1), int(chosen.chunk_size or 1)
    batches = f"{chunk} perturbed batch{'es' if chunk > 1 else ''}"
    warnings.warn(
        f"`max_memory` {config.max_memory}: {batches} per call, {micro} of {config.batch_size} "
        f"samples per pass, activation checkpointing {'on' if chosen.checkpoint_activations else 'off'} "
        f"(about {_gib(model.base + model.step(config.k, micro, chunk))} modelled)",
        HpdirsNote,
        3,
    )
    return chosen


def _halvings(n: int) -> list[int]:
    """n, ceil(n / 2), ... 1."""
    out = [n]
    while out[-1] > 1:
        out.append((out[-1] + 1) // 2)
    return out


def _gib(mb: float) -> str:
    return f"{mb / 1024:.1f} GiB" if mb >= 1024 else f"{mb:.0f} MiB"
