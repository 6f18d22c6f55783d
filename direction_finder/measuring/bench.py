"""The measurements behind `hpdirs bench`: medians after warm-up, on this machine.

- generator forward images/s;
- learning sample-steps/s for each evaluation layout (all 2k perturbed batches in one call,
  k per call, one per call) and for a reference step written as the paper's reference code
  does it (2k+1 evaluations with the centre computed, sequential Python Gram-Schmidt);
- FLOPs per sample-step (torch.utils.flop_counter), achieved FLOP/s and MFU against an fp32
  matmul peak measured in the same run;
- the intermediate-layer fast mode's sample-steps/s; peak memory; render images/s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from direction_finder.compiled import CompiledGenerator, compile_cache
from direction_finder.config import LearnConfig, check_layer
from direction_finder.explore.latency import explore_latency
from direction_finder.files import write_text_atomic
from direction_finder.generators.base import Layered, display_name
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.weights import ProgressCallback
from direction_finder.learning.objective import Batch, draw_batch, outputs, strict_fp32, train_step
from direction_finder.measuring.memory import memory_table
from direction_finder.measuring.settings import BenchSettings
from direction_finder.memory import default_render_batch
from direction_finder.method.orthonormal import gram_schmidt
from direction_finder.method.penalty import hessian_penalty_reference
from direction_finder.outputs.render import RenderSettings, render

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

BENCH_FORMAT = "hpdirs.bench/1"
Note = Callable[[str], None]


@dataclass
class LearnRates:
    """One batch size's learning step: sample-steps/s of each layout and of the reference step."""

    rates: dict[str, float]  # layout name (batched, chunks, sequential) or "reference" -> sample-steps/s
    default_layout: str  # the layout learn takes at this batch size
    ours: float  # sample-steps/s of that layout
    best_layout: str
    peak_memory_mb: float | None = None  # CUDA only (on a CPU only the process's peak is known)
    achieved_gflops: float = 0.0
    mfu: float = 0.0  # achieved / the measured matmul peak
    compiled_mfu: float | None = None  # the same for the compiled step (rates["compiled"]), where measured
    compile_s: float | None = None  # the compiled step's first call at this batch size: its compile

    @property
    def ratio_vs_reference(self) -> float:
        return self.ours / self.rates["reference"]

    def as_json(self) -> dict[str, Any]:
        peak = {} if self.peak_memory_mb is None else {"peak_memory_mb": self.peak_memory_mb}
        compiled = {} if self.compile_s is None else {"compile_s": self.compile_s, "compiled_mfu": self.compiled_mfu}
        return {**self.rates, **peak, "default_layout": self.default_layout, "ours": self.ours,
                "ratio_vs_reference": self.ratio_vs_reference, "best_layout": self.best_layout,
                "achieved_gflops": self.achieved_gflops, "mfu": self.mfu, **compiled}  # fmt: skip


@dataclass
class LayerRates:
    """The fast mode: learning on a layer's activation instead of pixels."""

    name: str
    shape: list[int]  # (C, H, W) of the activation
    sample_steps_per_s: dict[int, float]  # by batch size
    speedup_vs_pixels: dict[int, float]

    def as_json(self) -> dict[str, Any]:
        rows = {str(b): {"sample_steps_per_s": rate, "speedup_vs_pixels": self.speedup_vs_pixels[b]}
                for b, rate in self.sample_steps_per_s.items()}  # fmt: skip
        return {"name": self.name, "shape": self.shape, **rows}


@dataclass
class RenderRate:
    images: int
    seconds: float
    batch_size: int
    vs_forward: float = 0.0  # against the forward's images/s at the same batch

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": self.seconds, "images_per_s": self.images_per_s,
                "batch_size": self.batch_size, "vs_forward": self.vs_forward}  # fmt: skip


@dataclass
class BenchResult:
    """What `hpdirs bench` measured; `as_json()` is bench.json's body."""

    model: str
    device: str
    device_name: str
    threads: int
    torch: str
    steps: int
    k: int
    batch_sizes: list[int]
    matmul_peak_gflops: float = 0.0
    forward_images_per_s: dict[int, float] = field(default_factory=dict)
    learn: dict[int, LearnRates] = field(default_factory=dict)
    flops_per_sample_step: float = 0.0
    flops_per_forward_image: float = 0.0
    layer: LayerRates | None = None
    render: RenderRate | None = None
    render_compiled: RenderRate | None = None  # the same render through the compiled forward
    explore: dict[str, Any] | None = None  # sample count -> the explorer's latencies (ms)
    peak_memory_mb: float = 0.0
    memory: dict[str, Any] | None = None  # measuring/memory.py's table
    warm_compile_s: float | None = None  # the first batch size's compile again, from inductor's cache

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format": BENCH_FORMAT, "model": self.model, "device": self.device, "device_name": self.device_name,
            "threads": self.threads, "torch": self.torch, "steps": self.steps, "k": self.k,
            "batch_sizes": self.batch_sizes, "matmul_peak_gflops": self.matmul_peak_gflops,
            "forward_images_per_s": {str(b): rate for b, rate in self.forward_images_per_s.items()},
            "learn": {str(b): row.as_json() for b, row in self.learn.items()},
            "flops_per_sample_step": self.flops_per_sample_step,
            "flops_per_forward_image": self.flops_per_forward_image,
        }  # fmt: skip
        optional = {"layer": self.layer and self.layer.as_json(), "render": self.render and self.render.as_json(),
                    "render_compiled": self.render_compiled and self.render_compiled.as_json(),
                    "explore": self.explore}  # fmt: skip
        body |= {key: value for key, value in optional.items() if value is not None}
        body["peak_memory_mb"] = self.peak_memory_mb
        if self.warm_compile_s is not None:
            body["warm_compile_s"] = self.warm_compile_s
        if self.memory is not None:
            body["memory"] = self.memory
        return body


StepFn = Callable[..., Tensor]  # train_step or reference_step: (generator, A, optimizer, config, batch)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], Any], device: torch.device, steps: int, warmup: int = 1) -> float:
    """Median seconds of fn over `steps` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak(device: torch.device, size: int = 2048, steps: int = 5) -> float:
    """Measured fp32 matmul GFLOP/s (TF32 off): the roof MFU is reported against."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    with strict_fp32():
        seconds = timed(lambda: a @ b, device, steps, warmup=2)
    return 2 * size**3 / seconds / 1e9


def sequential_gram_schmidt(A: Tensor) -> Tensor:
    """Gram-Schmidt as the reference code writes it: a Python double loop over rows."""
    rows: list[Tensor] = []
    for i in range(A.shape[0]):
        v = A[i]
        for q in rows:
            v = v - (A[i] @ q) * q
        rows.append(v / v.norm())
    return torch.stack(rows)


def reference_step(
    generator: Generator, A: Tensor, optimizer: torch.optim.Optimizer, config: LearnConfig, batch: Batch
) -> Tensor:
    """One step laid out as the reference implementation: sequential Gram-Schmidt and 2k+1
    sequential generator calls (the centre is evaluated and subtracted)."""
    Q = sequential_gram_schmidt(A)
    n = Q.shape[0]
    w0 = torch.zeros(batch.z.shape[0], n, device=Q.device)
    w0[torch.arange(batch.z.shape[0]), batch.index.to(Q.device)] = batch.eta.to(Q.device)
    z = batch.z

    def f(w: Tensor) -> Tensor:
        return outputs(generator, z + w @ Q, config.layer)

    with strict_fp32():
        loss = hessian_penalty_reference(f, w0, k=config.k, epsilon=config.epsilon, vectors=batch.vectors.to(Q.device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def mid_layer(generator: Generator) -> str | None:
    """The last named layer nearest to an eighth of the output resolution (16 px at 128 px)."""
    if not isinstance(generator, Layered):
        return None
    layers = generator.layers()
    target = max(h for _, h, _ in layers.values()) / 8  # the last layer's resolution is the output's
    distance = {name: abs(h - target) for name, (_, h, _) in layers.items()}
    best = min(distance.values())
    return [name for name, d in distance.items() if d == best][-1]


def _random_directions(generator: Generator, config: LearnConfig) -> Tensor:
    """A Kaiming-normal A (N, z_dim) on the generator's device, as a fresh run starts."""
    n = int(config.num_directions or generator.z_dim)
    A = torch.nn.init.kaiming_normal_(torch.empty(n, int(generator.z_dim)))
    return A.to(generator.device).requires_grad_(True)


def _layouts(k: int) -> dict[str, int]:
    return {"batched": 2 * k, "chunks": k, "sequential": 1}


def _stepper(generator: Generator, config: LearnConfig, step_fn: StepFn = train_step) -> Callable[[], Any]:
    """A closure running one learning step on fresh draws (its own A, Adam and RNG)."""
    A = _random_directions(generator, config)
    optimizer = torch.optim.Adam([A], lr=config.lr)
    rng = torch.Generator().manual_seed(0)
    return lambda: step_fn(generator, A, optimizer, config, draw_batch(generator, config, rng))


def learning_rate(generator: Generator, config: LearnConfig, steps: int, step_fn: StepFn = train_step) -> float:
    """Median sample-steps/s of step_fn on fresh draws each step."""
    return config.batch_size / timed(_stepper(generator, config, step_fn), generator.device, steps)


def interleaved_rates(
    generator: Generator, variants: dict[str, tuple[LearnConfig, StepFn]], steps: int, note: Note
) -> dict[str, float]:
    """Median sample-steps/s of several step variants, timed in alternation (round-robin, after a
    warm-up of each) so that drift of the machine's speed biases none of them."""
    steppers = {name: _stepper(generator, config, fn) for name, (config, fn) in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for name, step in steppers.items():
        note(f"warm-up: {name}")
        step()
    for round_ in range(steps):
        for name, step in steppers.items():
            note(f"round {round_ + 1}/{steps}: {name}")
            _sync(generator.device)
            start = time.perf_counter()
            step()
            _sync(generator.device)
            times[name].append(time.perf_counter() - start)
    return {name: variants[name][0].batch_size / statistics.median(t) for name, t in times.items()}


def flops_per_sample_step(generator: Generator, config: LearnConfig) -> float:
    """FLOPs of one learning step (forward and backward) per sample, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    A = _random_directions(generator, config)
    optimizer = torch.optim.Adam([A], lr=config.lr)
    batch = draw_batch(generator, config, torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(generator, A, optimizer, config, batch)
    return counter.get_total_flops() / config.batch_size


def bench(generator: Generator, settings: BenchSettings = BenchSettings(), note: Note | None = None) -> BenchResult:
    """Run every measurement."""
    note = note or (lambda message: None)
    device = generator.device
    results = BenchResult(
        model=display_name(generator),
        device=str(device),
        device_name=torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        steps=settings.steps,
        k=settings.k,
        batch_sizes=list(settings.batch_sizes),
    )
    note("fp32 matmul peak")
    results.matmul_peak_gflops = matmul_peak(device)

    compiled = None
    if settings.compiled:
        compile_cache()
        compiled = CompiledGenerator(generator, "reduce-overhead" if device.type == "cuda" else "default")
    render_batch = settings.render_batch or default_render_batch(device)
    settings = dataclasses.replace(settings, render_batch=render_batch)
    sizes = sorted(set(settings.batch_sizes) | ({render_batch} if settings.render else set()))
    for b in sizes:
        note(f"forward, batch {b}")
        results.forward_images_per_s[b] = b / timed(_forward(generator, b), device, settings.steps)
    for b in settings.batch_sizes:
        base = LearnConfig(k=settings.k, batch_size=b).resolved(generator)
        variants: dict[str, tuple[LearnConfig, StepFn]] = {
            layout: (dataclasses.replace(base, chunk_size=chunk), train_step)
            for layout, chunk in _layouts(settings.k).items()
        }
        variants["reference"] = (base, reference_step)
        compile_s = None
        if compiled is not None:
            note(f"compiling the learning step, batch {b}")
            started = time.perf_counter()
            _stepper(compiled, base)()  # the first call compiles (forward and backward) for this shape
            compile_s = time.perf_counter() - started
            variants["compiled"] = (base, _through(compiled))
        _reset_peak(device)
        rates = interleaved_rates(generator, variants, settings.steps, _prefixed(note, f"batch {b}, "))
        peak = _peak_memory_mb(device) if device.type == "cuda" else None  # on CPU: the process's peak (below)
        matches = [name for name, c in _layouts(settings.k).items() if c == base.chunk_size]
        if matches:
            default_layout, ours = matches[0], rates[matches[0]]
        else:
            note(f"learning step, batch {b}, default chunk size {base.chunk_size}")
            default_layout, ours = f"chunk_size={base.chunk_size}", learning_rate(generator, base, settings.steps)
        best = max(_layouts(settings.k), key=lambda name: rates[name])
        results.learn[b] = LearnRates(rates, default_layout, ours, best, peak, compile_s=compile_s)
    b0 = settings.batch_sizes[0]
    note("FLOP count")
    base = LearnConfig(k=settings.k, batch_size=b0).resolved(generator)
    flops = flops_per_sample_step(generator, base)
    results.flops_per_sample_step = flops
    results.flops_per_forward_image = _forward_flops(generator)
    for row in results.learn.values():
        row.achieved_gflops = flops * row.ours / 1e9
        row.mfu = row.achieved_gflops / results.matmul_peak_gflops
        if "compiled" in row.rates:
            row.compiled_mfu = flops * row.rates["compiled"] / 1e9 / results.matmul_peak_gflops
    if compiled is not None and compiled.compiled:
        from torch import _dynamo

        note("compiling again from the cache")
        _dynamo.reset()  # forget the compiled code in memory: what a second process finds is on disk
        started = time.perf_counter()
        _stepper(CompiledGenerator(generator, compiled.mode), base)()
        results.warm_compile_s = time.perf_counter() - started
    layer = mid_layer(generator) if settings.layer == "auto" else settings.layer
    if layer is not None and isinstance(generator, Layered):
        results.layer = LayerRates(layer, list(generator.layers()[layer]), {}, {})
        for b in settings.batch_sizes:
            note(f"learning step at layer {layer}, batch {b}")
            config = LearnConfig(k=settings.k, batch_size=b, layer=layer).resolved(generator)
            rate = learning_rate(generator, config, settings.steps)
            results.layer.sample_steps_per_s[b] = rate
            results.layer.speedup_vs_pixels[b] = rate / results.learn[b].ours
    if settings.render:
        note("render")
        results.render = _render_rate(generator, settings)
        results.render.vs_forward = results.render.images_per_s / results.forward_images_per_s[render_batch]
        if compiled is not None and compiled.compiled:  # its warm-up render compiles the no-grad forward
            note("render, compiled")
            results.render_compiled = _render_rate(compiled, settings)
            results.render_compiled.vs_forward = (
                results.render_compiled.images_per_s / results.forward_images_per_s[render_batch]
            )
    if settings.explore:
        note("explorer latency")
        results.explore = explore_latency(generator, (1, 4), settings.steps)
    results.peak_memory_mb = _peak_memory_mb(device)
    if settings.memory:
        results.memory = memory_table(settings.memory, k=settings.k, device=device.type, note=note)
    return results


def _through(compiled: Generator) -> StepFn:
    """train_step with the compiled generator in place of the one the stepper was made with."""
    return lambda generator, A, optimizer, config, batch: train_step(compiled, A, optimizer, config, batch)


def _prefixed(note: Note, prefix: str) -> Note:
    return lambda message: note(prefix + message)


def _forward(generator: Generator, batch: int) -> Callable[[], Tensor]:
    """A closure generating the same `batch` images, without gradients."""
    z = generator.sample_z(batch, torch.Generator().manual_seed(1))

    def forward() -> Tensor:
        with torch.no_grad():
            return generator(z)

    return forward


def _forward_flops(generator: Generator) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    z = generator.sample_z(1, torch.Generator().manual_seed(2))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        generator(z)
    return float(counter.get_total_flops())


def _render_rate(generator: Generator, settings: BenchSettings) -> RenderRate:
    matrix = gram_schmidt(torch.randn(2, int(generator.z_dim), generator=torch.Generator().manual_seed(3)))
    options = RenderSettings(
        directions=[0, 1], samples=8, frames=8, formats=["gif", "png"], batch_size=settings.render_batch, label=True
    )
    images = 2 * 8 * 8
    with tempfile.TemporaryDirectory() as tmp:
        render(generator, matrix, dataclasses.replace(options, directions=[0]), tmp)  # warm-up
        _sync(generator.device)
        start = time.perf_counter()
        render(generator, matrix, options, tmp)
        _sync(generator.device)
        seconds = time.perf_counter() - start
    return RenderRate(images, seconds, int(settings.render_batch or 1))


def bench_to_file(
    choice: GeneratorChoice,
    settings: BenchSettings,
    out: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
    note: Note | None = None,
    on_layers: Callable[[dict[str, tuple[int, int, int]]], None] | None = None,
) -> BenchResult:
    """`hpdirs bench`: load the generator, measure, write the results to `out` (JSON); returns
    them. on_layers is told the generator's named layers (for the fast mode) before measuring."""
    generator = choice.load(progress=progress)
    if settings.layer not in (None, "auto"):
        check_layer(generator, settings.layer)
    if on_layers is not None and isinstance(generator, Layered):
        on_layers(generator.layers())
    results = bench(generator, settings, note=note)
    write_text_atomic(Path(out), json.dumps(results.as_json(), indent=2) + "\n")
    return results
