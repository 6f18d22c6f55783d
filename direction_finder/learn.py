"""Learn N latent directions by minimising the Hessian Penalty w.r.t. w of G(z + w Q).

The objective, exactly: for each sample b, z_b ~ G.sample_z, i_b ~ U{0..N-1},
eta_b ~ U[-eta, eta]; Q = Gram-Schmidt of A in every forward (orthonormal_directions: for
N = z_dim the last row is the oriented complement of the others); w0_b = eta_b e_{i_b};
f_b(w) = G(z_b + w Q); the penalty is the mean over (b, C, H, W) of the unbiased variance over k
Rademacher vectors v (all N coordinates) of (f_b(w0 + eps v) - 2 f_b(w0) + f_b(w0 - eps v)) / eps^2.
Only A is optimised (Adam); the generator is frozen.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from direction_finder.directions import (
    Directions,
    atomic_write,
    canonical_signs,
    orthonormal_directions,
    save_directions,
    write_bytes_atomic,
)
from direction_finder.errors import DirectionsFileError, HpdirsError, UsageError
from direction_finder.penalty import REDUCTIONS, hessian_penalty, rademacher

CHECKPOINT_FORMAT = "hpdirs.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
LAST_NAME = "directions.safetensors"
BEST_NAME = "directions_best.safetensors"
LOSS_NAME = "loss.csv"
CONFIG_NAME = "config.json"
CURVE_NAME = "loss.png"
LOCK_NAME = ".lock"
HELDOUT_SEED_OFFSET = 1_000_003  # the held-out set never shares draws with training
WARMSTART_SEED_OFFSET = 2_000_003  # nor does the curvature warm start
SMOOTHING = 0.98  # bias-corrected exponential moving average of the training loss, for display
# Fields a resumed run may change: they do not alter the optimisation path.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every"})
INITS = ("random", "axes", "sefa", "curvature")
# Named presets of how A starts and how far each Adam step moves it; every other field is shared.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"init": "random", "lr": 0.01},  # Peebles et al.: Kaiming-normal A, Adam lr 0.01
    # the warm start of direction_finder.warmstart, refined with steps that keep its structure
    # (README, Quality: measured on a real DCGAN within 10 CPU-minutes)
    "curvature": {"init": "curvature", "lr": 0.001},
}


# Ranges of the settings. The upper ends are far beyond any useful run, and exist so that a typo
# (--batch-size 1000000000000000) is one clear line instead of a failed allocation or an overflow.
LIMITS: dict[str, tuple[int, int]] = {
    "steps": (1, 10**9),
    "batch_size": (1, 65_536),
    "checkpoint_every": (1, 10**9),
    "eval_every": (0, 10**9),
    "eval_samples": (1, 1_000_000),
    "k": (2, 1024),  # a variance needs two samples
    "seed": (0, 2**62),  # seeds derived from it (held-out, warm start) must fit a 64-bit generator
    "num_directions": (1, 1_000_000),  # and at most z_dim, checked against the generator
    "chunk_size": (1, 2048),
}
FLOAT_LIMITS: dict[str, float] = {
    "lr": 10.0,  # A's rows have norm ~1: a step of 10 already throws them anywhere
    "eta": 1000.0,  # latents are ~N(0, 1): BigGAN sees nothing but saturation beyond a few hundred
    "epsilon": 100.0,
}


@dataclass(frozen=True)
class LearnConfig:
    """Everything that determines a learning run; serialised into every artifact."""

    num_directions: int | None = None  # N; None = the generator's z_dim
    steps: int = 1000
    batch_size: int = 4
    lr: float = 0.01  # Adam, default betas
    eta: float = 5.0  # base points w0 = eta_b e_i with eta_b ~ U[-eta, eta]
    epsilon: float = 0.1
    k: int = 2
    reduction: str = "mean"
    # "random": Kaiming-normal A (as the reference); "axes": A = I; "sefa": SeFa's closed form;
    # "curvature": the warm start of direction_finder.warmstart (its cost counts as learning time)
    init: str = "random"
    seed: int = 0
    checkpoint_every: int = 50
    eval_every: int = 50  # held-out penalty every this many steps (0: never)
    eval_samples: int = 16
    layer: str | None = None  # None: pixel space; else a named intermediate layer of G
    chunk_size: int | None = None  # perturbed batches per generator call; None: the device default

    def __post_init__(self) -> None:
        def integer(name: str, value: Any, low: int, high: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UsageError(f"{name.replace('_', '-')} must be an integer from {low} to {high:,}, got {value!r}")

        def number(name: str, value: Any, high: float) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
                raise UsageError(f"{name.replace('_', '-')} must be a finite number > 0, got {value!r}")
            if value > high:
                raise UsageError(f"{name.replace('_', '-')} must be at most {high:g}, got {value!r}")

        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if value is not None or name not in ("num_directions", "chunk_size"):
                integer(name, value, low, high)
        for name, high in FLOAT_LIMITS.items():
            number(name, getattr(self, name), high)
        if self.reduction not in REDUCTIONS[:2]:
            raise UsageError(f"reduction must be mean or max, got {self.reduction!r}")
        if self.init not in INITS:
            raise UsageError(f"init must be {', '.join(INITS[:-1])} or {INITS[-1]}, got {self.init!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_recipe(cls, recipe: str, **fields: Any) -> "LearnConfig":
        """The recipe's init and lr (see RECIPES), with any field given here taking precedence."""
        return cls(**{**recipe_fields(recipe), **fields})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LearnConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resolved(self, generator: Any) -> "LearnConfig":
        """num_directions and chunk_size filled in for this generator and device."""
        z_dim = int(generator.z_dim)
        n = self.num_directions if self.num_directions is not None else z_dim
        if n > z_dim:
            raise UsageError(f"num-directions {n} is more than z_dim {z_dim}; use at most {z_dim}")
        chunk = (self.chunk_size if self.chunk_size is not None
                 else default_chunk_size(generator.device, self.k, self.batch_size, self.layer))
        chunk = min(chunk, 2 * self.k)
        check_layer(generator, self.layer)
        if self.init == "sefa" and not hasattr(generator, "sefa_directions"):
            raise UsageError("init sefa: this generator has no first linear layer to factorise; use --init random")
        return dataclasses.replace(self, num_directions=n, chunk_size=chunk)


def recipe_fields(recipe: str) -> dict[str, Any]:
    """The LearnConfig fields a named recipe sets."""
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    return dict(RECIPES[recipe])


def check_layer(generator: Any, layer: str | None) -> None:
    """A layer name the generator's `features` knows, or None (pixel space)."""
    if layer is None:
        return
    if not hasattr(generator, "features"):
        raise UsageError(f"layer {layer!r}: this generator exposes no intermediate layers; omit --layer")
    names = list(generator.layers()) if hasattr(generator, "layers") else []
    if names and layer not in names:
        raise UsageError(f"unknown layer {layer!r}; choose from {', '.join(names)}")


CPU_ROWS_PER_CALL = 2  # measured best on a 2-core CPU for biggan-deep-128 (README, Performance)


def default_chunk_size(device: torch.device | str, k: int, batch_size: int = 1, layer: str | None = None) -> int:
    """How many of the 2k perturbed batches go into one generator call, by device and batch.

    Measured with `hpdirs bench` on our 2-core CPU, biggan-deep-128, in two interleaved runs:
    in pixel space calls of about 2 images are fastest (batch 1: 2 per call 0.61-0.69
    sample-steps/s, 1 per call 0.56-0.65, all 4 in one call 0.50-0.52; batch 4: one perturbed
    batch of 4 per call 0.62-0.63, all 16 in one call 0.47-0.48). With --layer the partial
    forward's activations are small and one call of all 2k is fastest (block4, batch 4: 3.31 vs
    2.83 sample-steps/s one per call). Accelerators gain from batching all 2k.
    """
    if torch.device(device).type in ("cuda", "mps") or layer is not None:
        return 2 * k
    return max(1, min(2 * k, CPU_ROWS_PER_CALL // batch_size))


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


def direction_penalty(
    generator: Any,
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
        return generator(latents) if layer is None else generator.features(latents, layer)

    if vectors is not None:
        vectors = vectors.to(Q.device, Q.dtype)
    with strict_fp32():
        return hessian_penalty(f, w0, k=k, epsilon=epsilon, reduction=reduction, vectors=vectors,
                               generator=rng, chunk_size=chunk_size)


@dataclass(frozen=True)
class Batch:
    """One step's random draws: latents, directions, base-point magnitudes, Rademacher vectors."""

    z: Tensor  # (B, z_dim)
    index: Tensor  # (B,) long, uniform over 0..N-1
    eta: Tensor  # (B,) uniform in [-eta, eta]
    vectors: Tensor  # (k, B, N) +-1


def draw_batch(generator: Any, config: LearnConfig, rng: torch.Generator, dist: Any = None) -> Batch:
    """Draw a step's randomness, in a fixed order, from the one CPU generator `rng`.

    Under torch.distributed every rank draws the whole global batch from the same stream and
    keeps its own contiguous slice: together the ranks see exactly a single process's batch.
    """
    batch, n = config.batch_size, config.num_directions
    z = generator.sample_z(batch, rng)
    index = torch.randint(n, (batch,), generator=rng)
    eta = (torch.rand(batch, generator=rng) * 2 - 1) * config.eta
    vectors = rademacher((config.k, batch, n), generator=rng)
    if dist is None or dist.world == 1:
        return Batch(z, index, eta, vectors)
    part = slice(dist.rank * batch // dist.world, (dist.rank + 1) * batch // dist.world)
    return Batch(z[part], index[part], eta[part], vectors[:, part])


def train_step(generator: Any, A: Tensor, optimizer: torch.optim.Optimizer, config: LearnConfig,
               batch: Batch, dist: Any = None) -> Tensor:
    """One Adam step on the objective; returns the (detached) loss. A non-finite loss is
    returned without a step, so the caller can stop with A untouched.

    Under torch.distributed the loss and the gradient of A are averaged over the ranks' equal
    slices (= the global batch's mean loss and its gradient) before the step.
    """
    Q = orthonormal_directions(A)  # (N, z_dim): re-orthonormalised in every forward
    loss = direction_penalty(generator, Q, batch.z, batch.index, batch.eta, k=config.k, epsilon=config.epsilon,
                             reduction=config.reduction, vectors=batch.vectors, chunk_size=config.chunk_size,
                             layer=config.layer)
    reported = loss.detach().clone()
    if dist is not None and dist.world > 1:
        dist.mean_(reported)  # every rank sees the same value, so all stop or step together
    if not torch.isfinite(reported):
        return reported
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if dist is not None and dist.world > 1:
        dist.mean_(A.grad)
    optimizer.step()
    return reported


@dataclass(frozen=True)
class HeldOut:
    """A fixed evaluation set: the same z, i, eta and Rademacher vectors every time."""

    z: Tensor  # (E, z_dim)
    index: Tensor  # (E,)
    eta: Tensor  # (E,)
    vectors: Tensor  # (k, E, N)

    @classmethod
    def draw(cls, generator: Any, num_directions: int, samples: int, k: int, eta: float, seed: int) -> "HeldOut":
        rng = torch.Generator().manual_seed(seed)
        z = generator.sample_z(samples, rng)
        index = torch.randint(num_directions, (samples,), generator=rng)
        eta_values = (torch.rand(samples, generator=rng) * 2 - 1) * eta
        vectors = rademacher((k, samples, num_directions), generator=rng)
        return cls(z, index, eta_values, vectors)


def heldout_penalty(generator: Any, Q: Tensor, heldout: HeldOut, config: LearnConfig,
                    batch_size: int | None = None, dist: Any = None) -> float:
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
            value = direction_penalty(
                generator, Q, heldout.z[part], heldout.index[part], heldout.eta[part],
                k=config.k, epsilon=config.epsilon, reduction=config.reduction,
                vectors=heldout.vectors[:, part], chunk_size=config.chunk_size, layer=config.layer)
            if config.reduction == "mean":
                total += float(value) * heldout.z[part].shape[0]
            else:
                total = max(total, float(value))
    if ranks > 1:
        import torch.distributed as torch_dist

        reduced = torch.tensor([total], dtype=torch.float64, device=Q.device)
        torch_dist.all_reduce(reduced, op=torch_dist.ReduceOp.SUM if config.reduction == "mean" else torch_dist.ReduceOp.MAX)
        total = float(reduced.item())
    return total / count if config.reduction == "mean" else total


@dataclass(frozen=True)
class StepInfo:
    """What the progress display needs after each step."""

    step: int
    steps: int
    loss: float
    smoothed: float
    heldout: float | None  # this step's held-out penalty, when evaluated
    best_heldout: float | None
    elapsed: float  # seconds of learning so far (across resumes)
    sample_steps_per_s: float  # over this session's steps after the first
    eta_s: float | None  # estimated seconds to finish


class LearnInterrupted(HpdirsError):
    """Ctrl-C, SIGTERM or SIGHUP: the checkpoint of the last completed step was written."""

    def __init__(self, run_dir: Path | None, step: int, signum: int = signal.SIGINT) -> None:
        where = f"; checkpoint at step {step} in {run_dir}" if run_dir else ""
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}{where}")
        self.run_dir, self.step, self.signum = run_dir, step, int(signum)


class RunWriteError(HpdirsError):
    """A run's files could not be written (disk full, permissions); the earlier ones are intact."""


class NonFiniteLoss(HpdirsError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"torch": torch.__version__}
    for package in ("hpdirs", "pytorch-pretrained-biggan"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _describe(generator: Any) -> dict[str, Any]:
    if hasattr(generator, "describe"):
        return dict(generator.describe())
    return {"model": type(generator).__name__, "class_index": -1, "class_name": "", "truncation": 1.0, "weights": ""}


@dataclass
class _State:
    """Everything that must survive an interruption, at a step boundary."""

    step: int
    A: Tensor
    optimizer: dict[str, Any]
    rng: Tensor
    average: float  # EMA of the training loss started at 0 (divide by 1 - SMOOTHING^step)
    elapsed: float
    best_heldout: float
    best_step: int
    best_matrix: Tensor | None

    @property
    def smoothed_loss(self) -> float:
        return self.average / (1 - SMOOTHING**self.step) if self.step else math.nan

    def to_checkpoint(self, config: LearnConfig, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "step": self.step, "A": self.A, "optimizer": self.optimizer,
            "rng": self.rng, "average": self.average, "elapsed": self.elapsed,
            "best_heldout": self.best_heldout, "best_step": self.best_step, "best_matrix": self.best_matrix,
            "config": json.dumps(config.to_dict(), sort_keys=True), "generator": json.dumps(meta, sort_keys=True),
        }


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True (nothing in it can execute code)."""
    if not path.is_file():
        raise DirectionsFileError(f"no checkpoint at {path}; --resume needs a run folder written by `hpdirs learn`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DirectionsFileError(f"checkpoint {path} cannot be read ({first[:200]}); it is damaged or not ours") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise DirectionsFileError(f"{path} is not an hpdirs checkpoint ({CHECKPOINT_FORMAT})")
    return data


def _checkpoint_json(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(data[key])
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value
    except (KeyError, TypeError, ValueError) as exc:
        raise DirectionsFileError(f"checkpoint {path} is damaged (its {key} cannot be read: {exc}); "
                                  "it cannot be resumed: start a new run") from None


def _checkpoint_config(data: dict[str, Any], path: Path) -> LearnConfig:
    try:
        return LearnConfig.from_dict(_checkpoint_json(data, "config", path))
    except UsageError as exc:
        raise DirectionsFileError(f"checkpoint {path} is damaged ({exc}); it cannot be resumed: start a new run") from None


def check_checkpoint(data: dict[str, Any], path: Path, config: LearnConfig, z_dim: int) -> None:
    """Every field of a checkpoint has the type, shape and range this run needs; a
    DirectionsFileError naming the file and the field otherwise (never a traceback later)."""
    n = int(config.num_directions)

    def bad(field: str, why: str) -> DirectionsFileError:
        return DirectionsFileError(f"checkpoint {path} is damaged ({field} {why}); it cannot be resumed: "
                                   "start a new run, or restore the file")

    def number(field: str) -> None:
        value = data.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise bad(field, f"is {value!r}, not a number")

    step = data.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step:
        raise bad("step", f"is {step!r}, not a step number")
    A = data.get("A")
    if not isinstance(A, Tensor) or A.shape != (n, z_dim) or not A.is_floating_point() or not bool(A.isfinite().all()):
        raise bad("A", f"is not a finite ({n}, {z_dim}) matrix")
    for field in ("average", "elapsed", "best_heldout"):
        number(field)
    if isinstance(data.get("best_step"), bool) or not isinstance(data.get("best_step"), int):
        raise bad("best_step", "is not an integer")
    best = data.get("best_matrix")
    if best is not None and (not isinstance(best, Tensor) or best.shape != (n, z_dim)):
        raise bad("best_matrix", f"is not a ({n}, {z_dim}) matrix")
    rng = data.get("rng")
    try:
        torch.Generator().set_state(rng)
    except (TypeError, RuntimeError, ValueError):
        raise bad("rng", "is not a random-number generator state") from None
    probe = torch.optim.Adam([torch.zeros(n, z_dim, requires_grad=True)], lr=config.lr)
    try:
        probe.load_state_dict(data.get("optimizer"))
        for state in probe.state.values():
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state and tuple(state[key].shape) != (n, z_dim):
                    raise ValueError(f"{key} has shape {tuple(state[key].shape)}")
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise bad("optimizer", f"is not an Adam state for A ({' '.join(str(exc).split())[:120]})") from None


def config_differences(old: LearnConfig, new: LearnConfig) -> list[str]:
    """Fields that differ and would change the optimisation path."""
    a, b = old.to_dict(), new.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k] and k not in RESUMABLE_CHANGES]


def _save_torch(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One writer per run folder: a second process gets a clear error instead of interleaving."""
    lock = run_dir / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise UsageError(f"run {run_dir} is being written by process {pid}; wait for it or use another --name") from None
            lock.unlink(missing_ok=True)  # stale: its writer is gone
    else:
        raise UsageError(f"cannot lock {run_dir}; remove {lock} if no hpdirs process is using it")
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _RunFiles:
    """The files of one run folder; every write is atomic."""

    def __init__(self, run_dir: Path, config: LearnConfig, meta: dict[str, Any]) -> None:
        self.dir, self.config, self.meta = run_dir, config, meta
        self.rows: list[dict[str, str]] = []

    def write_config(self) -> None:
        body = {"config": self.config.to_dict(), "generator": self.meta, "versions": _versions()}
        atomic_write(self.dir / CONFIG_NAME, lambda tmp: tmp.write_text(json.dumps(body, indent=2) + "\n"))

    def load_rows(self, up_to_step: int) -> None:
        """The log's rows up to the checkpoint's step (a damaged log: one line naming it)."""
        path = self.dir / LOSS_NAME
        if not path.is_file():
            return
        fields = ["step", "loss", "smoothed_loss", "heldout", "elapsed_s", "sample_steps_per_s"]
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames != fields:
                    raise ValueError(f"its header is {reader.fieldnames}")
                rows = list(reader)
            for row in rows:
                int(row["step"]), float(row["smoothed_loss"])  # what the loss curve reads
                if row["heldout"]:
                    float(row["heldout"])
        except (OSError, UnicodeDecodeError, ValueError, TypeError, csv.Error) as exc:
            raise DirectionsFileError(f"{path} is damaged ({' '.join(str(exc).split())[:160]}); delete it (the log "
                                      "restarts at the checkpoint's step) or restore it, then resume") from None
        self.rows = [r for r in rows if int(r["step"]) <= up_to_step]

    def add_row(self, row: dict[str, Any]) -> None:
        self.rows.append({k: ("" if v is None else (f"{v:.9g}" if isinstance(v, float) else str(v))) for k, v in row.items()})

    def write_log(self) -> None:
        from direction_finder.plot import loss_curve

        buffer = io.StringIO()
        fields = ["step", "loss", "smoothed_loss", "heldout", "elapsed_s", "sample_steps_per_s"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(self.dir / LOSS_NAME, lambda tmp: tmp.write_text(buffer.getvalue()))
        series = {
            "training loss (smoothed)": [(int(r["step"]), float(r["smoothed_loss"])) for r in self.rows],
            "held-out penalty": [(int(r["step"]), float(r["heldout"])) for r in self.rows if r["heldout"]],
        }
        title = f"{self.meta.get('model', '')} {self.meta.get('class_name', '')}".strip()
        atomic_write(self.dir / CURVE_NAME, lambda tmp: loss_curve(series, tmp, title=title))


def _directions_metadata(meta: dict[str, Any], config: LearnConfig, step: int, loss: float,
                         kind: str, heldout: float | None) -> dict[str, Any]:
    return {
        **{k: meta.get(k, "") for k in ("model", "class_index", "class_name", "truncation", "weights",
                                         "weights_fingerprint")},
        "config": config.to_dict(), "step": step, "loss": loss, "heldout": heldout, "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": _versions(),
    }


def learn(
    generator: Any,
    config: LearnConfig,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    dist: Any = None,
    time_limit_s: float | None = None,
) -> Directions:
    """Learn config.num_directions directions for `generator` (any Generator-protocol object).

    With out_dir, writes directions.safetensors (last), directions_best.safetensors (best by
    held-out penalty), config.json, loss.csv, loss.png and checkpoint.pt there; every
    checkpoint_every steps and on Ctrl-C (LearnInterrupted) the checkpoint is written
    atomically. resume=True continues from out_dir's checkpoint, bitwise identically on CPU.
    With `dist` (a DistContext, under torchrun) the batch is split over the ranks, gradients are
    averaged, and only rank 0 writes files (every rank needs out_dir to read a resumed run).
    time_limit_s stops (and saves) after the first step at which the run's learning time,
    across resumes, reaches it. Returns the last directions.
    """
    config = config.resolved(generator)
    meta = _describe(generator)
    if dist is not None and config.batch_size % dist.world:
        raise UsageError(f"batch-size {config.batch_size} does not split evenly over {dist.world} ranks; "
                         f"use a multiple of {dist.world}")
    run_dir = Path(out_dir) if out_dir is not None else None
    if resume and run_dir is None:
        raise UsageError("resume needs the run folder (out_dir) to continue from")
    if run_dir is None:
        return _learn_loop(generator, config, meta, None, None, on_step, dist, time_limit_s)
    main = dist is None or dist.is_main
    fresh = False  # a folder this run starts empty: removed again if no checkpoint is ever written
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(run_dir, os.W_OK):
            raise UsageError(f"cannot write to {run_dir}; choose another --out")
        fresh = not resume and not any(run_dir.iterdir())
    try:
        with (run_lock(run_dir) if main else _no_lock()):
            return _learn_in(generator, config, meta, run_dir, resume, main, on_step, dist, time_limit_s)
    except BaseException:
        if fresh and not (run_dir / CHECKPOINT_NAME).exists():
            _remove_unfinished(run_dir)  # neither a new name nor a resumable run: leave nothing
        raise


def _remove_unfinished(run_dir: Path) -> None:
    """Remove the files a run that never reached its first checkpoint wrote, and its folder."""
    for name in (CONFIG_NAME, LOSS_NAME, CURVE_NAME, LAST_NAME, BEST_NAME, LOCK_NAME):
        (run_dir / name).unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:
        pass  # something else is in it: leave it


def _learn_in(generator: Any, config: LearnConfig, meta: dict[str, Any], run_dir: Path, resume: bool, main: bool,
              on_step: Callable[[StepInfo], None] | None, dist: Any, time_limit_s: float | None) -> Directions:
    """learn() with its run folder locked: every file of a resumed run is checked before any is
    written, so a failed resume leaves config.json as it was."""
    checkpoint = None
    files = _RunFiles(run_dir, config, meta) if main else None
    if resume:
        checkpoint = read_checkpoint(run_dir / CHECKPOINT_NAME)
        old = _checkpoint_config(checkpoint, run_dir / CHECKPOINT_NAME)
        differences = config_differences(old, config)
        if differences:
            raise UsageError(f"cannot resume {run_dir} with a different config ({'; '.join(differences)}); "
                             "use the original settings or start a new run")
        old_meta = _checkpoint_json(checkpoint, "generator", run_dir / CHECKPOINT_NAME)
        changed = [k for k in ("model", "class_index", "truncation") if old_meta.get(k) != meta.get(k)]
        if changed:
            raise UsageError(f"cannot resume {run_dir}: the generator differs in {', '.join(changed)} "
                             f"(was {', '.join(str(old_meta.get(k)) for k in changed)})")
        check_checkpoint(checkpoint, run_dir / CHECKPOINT_NAME, config, int(generator.z_dim))
        if files is not None:
            files.load_rows(int(checkpoint["step"]))
    elif main and (run_dir / CHECKPOINT_NAME).exists():
        raise UsageError(f"{run_dir} already holds a run; pass --resume {run_dir} or choose another --name")
    if files is not None:
        files.write_config()
    return _learn_loop(generator, config, meta, files, checkpoint, on_step, dist, time_limit_s)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    before = [signal.signal(kind, signal.SIG_IGN) for kind in kinds]
    try:
        yield
    finally:
        for kind, handler in zip(kinds, before):
            signal.signal(kind, handler)


def _initial_state(generator: Any, config: LearnConfig, resuming: bool = False) -> tuple[_State, torch.optim.Adam, Tensor]:
    """Step 0: A, Adam and the sample stream. A resumed run replaces A, so no warm start is
    computed for it. The warm start's seconds start the run's learning time."""
    n, z_dim = config.num_directions, int(generator.z_dim)
    rng = torch.Generator().manual_seed(config.seed)
    A = torch.empty(n, z_dim)
    started = time.perf_counter()
    if config.init == "random":
        torch.nn.init.kaiming_normal_(A, generator=rng)  # std sqrt(2 / z_dim), as the reference
    elif resuming:
        A = torch.zeros(n, z_dim)  # replaced by the checkpoint's A
    elif config.init == "sefa":  # closed-form warm start, refined by the penalty
        A = generator.sefa_directions(n).float().cpu()
    elif config.init == "curvature":
        from direction_finder.warmstart import curvature_directions

        A = curvature_directions(generator, n, seed=config.seed + WARMSTART_SEED_OFFSET).cpu()
    else:
        A = torch.eye(n, z_dim)
    A = A.to(generator.device, getattr(generator, "dtype", torch.float32)).requires_grad_(True)
    optimizer = torch.optim.Adam([A], lr=config.lr)
    state = _State(0, A.detach().clone(), copy.deepcopy(optimizer.state_dict()), rng.get_state(),
                   0.0, time.perf_counter() - started, math.inf, -1, None)
    return state, optimizer, A


def _learn_loop(generator: Any, config: LearnConfig, meta: dict[str, Any], files: _RunFiles | None,
                checkpoint: dict[str, Any] | None, on_step: Callable[[StepInfo], None] | None,
                dist: Any = None, time_limit_s: float | None = None) -> Directions:
    state, optimizer, A = _initial_state(generator, config, resuming=checkpoint is not None)
    if dist is not None and dist.world > 1 and checkpoint is None:
        # every rank must start from the same A; a warm start computed on each device may differ
        with torch.no_grad():
            A.copy_(dist.broadcast(A.detach().cpu()).to(A.device))
        state = dataclasses.replace(state, A=A.detach().clone())
    rng = torch.Generator()
    if checkpoint is not None:
        state = _State(checkpoint["step"], checkpoint["A"], checkpoint["optimizer"], checkpoint["rng"],
                       checkpoint["average"], checkpoint["elapsed"], checkpoint["best_heldout"],
                       checkpoint["best_step"], checkpoint["best_matrix"])
        with torch.no_grad():
            A.copy_(state.A.to(A.device))
        optimizer.load_state_dict(state.optimizer)
    rng.set_state(state.rng)

    n = config.num_directions
    heldout = None
    if config.eval_every:
        heldout = HeldOut.draw(generator, n, config.eval_samples, config.k, config.eta,
                               config.seed + HELDOUT_SEED_OFFSET)
    batch = config.batch_size
    timed_steps, timed_seconds = 0, 0.0
    last_loss = math.nan

    def save(s: _State, interrupted: bool = False) -> None:
        error = None
        if files is not None:
            try:
                _save_files(s)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if (files.dir / CHECKPOINT_NAME).exists():
                    error = RunWriteError(
                        f"could not write to {files.dir} ({reason}) at step {s.step}; the files written before are "
                        f"intact: free space and continue with `hpdirs learn --resume {files.dir}`")
                else:
                    error = RunWriteError(
                        f"could not write to {files.dir} ({reason}) at step {s.step}, before the run's first "
                        "checkpoint; nothing was kept: free space and start the run again")
        if dist is not None and dist.world > 1 and not interrupted:
            if not dist.agree(error is None, A.device) and error is None:
                from direction_finder.distributed import RankFailed

                raise RankFailed(f"rank 0 could not write the checkpoint at step {s.step}; stopping rank {dist.rank}")
        if error is not None:
            raise error

    def _save_files(s: _State) -> None:
        assert files is not None
        _save_torch(s.to_checkpoint(config, meta), files.dir / CHECKPOINT_NAME)
        with torch.no_grad():
            Q = canonical_signs(orthonormal_directions(s.A))
        loss = s.smoothed_loss
        save_directions(files.dir / LAST_NAME, Directions(Q.cpu(), _directions_metadata(
            meta, config, s.step, loss, "last", None), s.A.cpu()))
        if s.best_matrix is not None:
            save_directions(files.dir / BEST_NAME, Directions(canonical_signs(s.best_matrix.cpu()), _directions_metadata(
                meta, config, s.best_step, loss, "best", s.best_heldout)))
        files.write_log()

    first_step = state.step  # the first step of this session warms up: not timed
    try:
        for step in range(first_step, config.steps):
            t0 = time.perf_counter()
            loss = train_step(generator, A, optimizer, config, draw_batch(generator, config, rng, dist), dist)
            last_loss = float(loss)
            if not math.isfinite(last_loss):
                kept = ""
                if files is not None:
                    kept = (f"; the last good checkpoint (step {state.step}) is kept in {files.dir}"
                            if (files.dir / CHECKPOINT_NAME).exists() else "; no checkpoint had been written yet")
                raise NonFiniteLoss(f"the loss became {last_loss} at step {step + 1}{kept}; "
                                    "lower --lr or --eta, or check the generator's weights")
            done = step + 1
            seconds = time.perf_counter() - t0
            if step > first_step or done == config.steps:
                timed_steps, timed_seconds = timed_steps + 1, timed_seconds + seconds
            average = SMOOTHING * state.average + (1 - SMOOTHING) * last_loss  # EMA from 0
            smoothed = average / (1 - SMOOTHING**done)  # bias-corrected, as Adam's moments
            value = None
            best_heldout, best_step, best_matrix = state.best_heldout, state.best_step, state.best_matrix
            if heldout is not None and (done % config.eval_every == 0 or done == config.steps):
                with torch.no_grad():
                    Q_now = orthonormal_directions(A)
                value = heldout_penalty(generator, Q_now, heldout, config, dist=dist)
                if value < best_heldout:
                    best_heldout, best_step, best_matrix = value, done, Q_now.detach().clone()
            elapsed = state.elapsed + seconds
            state = _State(done, A.detach().clone(), copy.deepcopy(optimizer.state_dict()), rng.get_state(),
                           average, elapsed, best_heldout, best_step, best_matrix)
            rate = batch * timed_steps / timed_seconds if timed_seconds > 0 else batch / max(seconds, 1e-9)
            eta_s = (config.steps - done) * (timed_seconds / timed_steps) if timed_steps else None
            if files is not None:
                files.add_row({"step": done, "loss": last_loss, "smoothed_loss": smoothed, "heldout": value,
                               "elapsed_s": elapsed, "sample_steps_per_s": rate})
            if done % config.checkpoint_every == 0 and done != config.steps:
                save(state)
            if on_step is not None:
                on_step(StepInfo(done, config.steps, last_loss, smoothed, value,
                                 None if best_step < 0 else best_heldout, elapsed, rate, eta_s))
            if time_limit_s is not None:
                stop = elapsed >= time_limit_s
                if dist is not None and dist.world > 1:  # ranks' clocks differ: stop together
                    stop = not dist.agree(not stop, A.device)
                if stop:
                    break
    except KeyboardInterrupt as exc:
        with _signals_ignored():  # a second Ctrl-C or SIGTERM must not cut the last save short
            save(state, interrupted=True)
        raise LearnInterrupted(files.dir if files else None, state.step,
                               getattr(exc, "signum", signal.SIGINT)) from None
    save(state)
    with torch.no_grad():
        Q = canonical_signs(orthonormal_directions(A).cpu())
    return Directions(Q, _directions_metadata(meta, config, state.step, state.smoothed_loss, "last", None),
                      A.detach().cpu())


def new_run_dir(out_root: str | os.PathLike, class_slug: str, name: str | None = None) -> Path:
    """outputs/<class>/<run>/, created exclusively: two runs never share a folder.

    Without a name, the run is named by the UTC time (suffixed -2, -3, ... on a clash).
    """
    parent = Path(out_root) / class_slug
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {parent} ({exc.strerror}); choose another --out") from None
    if name is not None:
        if not name or "/" in name or name in (".", ".."):
            raise UsageError(f"--name {name!r} is not a valid folder name")
        path = parent / name
        try:
            path.mkdir()
        except FileExistsError:
            raise UsageError(f"run {path} already exists; choose another --name, or --resume {path}") from None
        except OSError as exc:
            raise UsageError(f"cannot create {path} ({exc.strerror}); choose another --out") from None
        return path
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot create {path} ({exc.strerror}); choose another --out") from None
    raise UsageError(f"too many runs named {stamp} in {parent}")


def read_run(run_dir: str | os.PathLike) -> tuple[LearnConfig, dict[str, Any]]:
    """The config and generator description a run folder was started with (its config.json)."""
    path = Path(run_dir) / CONFIG_NAME
    if not Path(run_dir).is_dir():
        raise UsageError(f"--resume {run_dir}: no such run folder")
    try:
        body = json.loads(path.read_text())
        return LearnConfig.from_dict(body["config"]), dict(body["generator"])
    except UsageError as exc:  # a hand-edited value out of range
        raise DirectionsFileError(f"{path} is damaged ({exc}); restore it (the run's checkpoint has the "
                                  "original settings) or start a new run") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise DirectionsFileError(f"{path} is missing or damaged ({type(exc).__name__}: {detail}); "
                                  "cannot resume this run") from None
