"""The Generator protocol, what every part of hpdirs needs from a GAN, and the optional
capabilities some generators add. Code outside this package asks for a capability with
isinstance on these runtime-checkable protocols (or the helpers below), never by probing names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from direction_finder.errors import UsageError


@runtime_checkable
class Generator(Protocol):
    """A frozen, deterministic map from latents z (n, z_dim) to images (n, C, H, W) in [-1, 1].

    Deterministic: the same z gives bitwise the same image. Frozen: no parameter requires grad,
    so backward computes input gradients only.
    """

    z_dim: int
    device: torch.device

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n latents (n, z_dim) on self.device, drawn from the generator's prior."""
        ...

    def __call__(self, z: Tensor) -> Tensor:
        """Images (n, C, H, W), float32 in [-1, 1]."""
        ...


@runtime_checkable
class Described(Protocol):
    """Says what to record in artifacts so that others can rebuild the same generator."""

    def describe(self) -> dict[str, Any]:
        """model, class_index, class_name, truncation, weights (and weights_fingerprint)."""
        ...


@runtime_checkable
class Layered(Protocol):
    """Exposes named intermediate layers: the penalty can be taken there instead of on pixels."""

    def layers(self) -> dict[str, tuple[int, int, int]]:
        """Layer name -> (channels, height, width) of its output."""
        ...

    def features(self, z: Tensor, layer: str) -> Tensor:
        """The (normalised) activation of `layer` for latents z (n, z_dim)."""
        ...


@runtime_checkable
class Checkpointable(Protocol):
    """Can recompute its blocks' activations in the backward instead of keeping them."""

    def set_checkpointing(self, on: bool) -> None:
        """Turn activation checkpointing on or off (it acts only while autograd records)."""
        ...


@runtime_checkable
class Factorisable(Protocol):
    """Has a first linear layer acting on z, so SeFa's closed-form directions exist."""

    def sefa_directions(self, n: int) -> Tensor:
        """SeFa's n directions (n, z_dim), orthonormal rows (see `sefa`)."""
        ...


@runtime_checkable
class ZLayered(Protocol):
    """z enters several layers (BigGAN-deep: its first linear layer and every conditional
    BatchNorm's gain and bias), so SeFa factorises them together, as its authors do where a
    latent feeds several layers (`sefa_of`)."""

    def z_weights(self) -> list[Tensor]:
        """The weights that act on z, (out_l, z_dim) each, of every layer that takes it: the
        first layer first."""
        ...


@runtime_checkable
class ClassConditional(Protocol):
    """Bound to one class of a class-conditional generator; can be re-bound to another."""

    truncation: float

    def with_class(self, class_: str | int) -> Generator:
        """The same generator (same weights, device and truncation) for another class."""
        ...


@runtime_checkable
class KnownTruth(Protocol):
    """A generator whose true latent directions are known (the synthetic model)."""

    basis: Tensor  # (z_dim, z_dim): the true directions first, then the ones that change nothing
    true_directions: Tensor  # (factors, z_dim): the directions that change the image


@runtime_checkable
class LayerwiseLatent(Protocol):
    """A generator whose layers can each see a latent of their own (GANSpace's layer-wise edits):
    latent layer 0 is the first one the latent enters, layer l the l-th after it. With the same
    latent on every layer, `layerwise` gives exactly the plain forward's images."""

    latent_layers: int  # how many layers the latent conditions

    def layerwise(self, zs: Tensor) -> Tensor:
        """zs (n, latent_layers, z_dim): a latent per layer -> images (n, C, H, W)."""
        ...


@runtime_checkable
class Fingerprinted(Protocol):
    """Knows a cheap fingerprint of its weights, recorded so a later run notices other weights."""

    weights_fingerprint: str


CAPABILITIES: dict[str, type] = {
    kind.__name__: kind
    for kind in (Described, Layered, Checkpointable, Factorisable, ZLayered, ClassConditional, KnownTruth,
                 LayerwiseLatent, Fingerprinted)
}  # fmt: skip


def has_capability(generator: Generator, name: str) -> bool:
    """isinstance(generator, the capability `name` names): for tables that must name capabilities
    without importing them (see starts.py)."""
    return isinstance(generator, CAPABILITIES[name])


def describe(generator: object) -> dict[str, Any]:
    """generator.describe(), or a description naming its type for a generator that has none."""
    if isinstance(generator, Described):
        return dict(generator.describe())
    return {"model": type(generator).__name__, "class_index": -1, "class_name": "", "truncation": 1.0, "weights": ""}


def display_name(generator: object) -> str:
    """A short name of the generator for messages and reports: its `name`, else its class."""
    name = getattr(generator, "name", None)
    return name if isinstance(name, str) and name else type(generator).__name__


def working_dtype(generator: Generator) -> torch.dtype:
    """The float type the generator computes in (float32 unless it says otherwise)."""
    dtype = getattr(generator, "dtype", torch.float32)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def _sefa_eigen(weight: Tensor) -> tuple[Tensor, Tensor]:
    """The eigenvalues of W^T W, largest first (z_dim,), and their eigenvectors as rows
    (z_dim, z_dim), in float64."""
    w = weight.detach().double()  # (out, z_dim)
    values, vectors = torch.linalg.eigh(w.T @ w)  # ascending eigenvalues
    order = torch.argsort(values, descending=True)
    return values[order], vectors[:, order].T


def sefa(weight: Tensor, n: int) -> Tensor:
    """SeFa's closed-form directions (Shen & Zhou, CVPR 2021) of a layer whose weight acts on z.

    weight (out, z_dim): the columns of the first layer that multiply z. The directions are the
    eigenvectors of W^T W with the n largest eigenvalues, as rows (n, z_dim) in float32, each
    signed so that its largest-magnitude entry is positive. Computed in float64.
    """
    top = _sefa_eigen(weight)[1][:n]  # (n, z_dim)
    signs = torch.sign(top.gather(1, top.abs().argmax(dim=1, keepdim=True)))
    return (top * signs).float()


def _stacked(weights: Sequence[Tensor]) -> Tensor:
    """The z-weights of several layers as one matrix (sum out_l, z_dim), each row unit length."""
    stacked = torch.cat([w.detach().double() for w in weights])  # (sum out_l, z_dim)
    return stacked / stacked.norm(dim=1, keepdim=True).clamp_min(SEFA_EPS)


SEFA_VARIANTS = ("sefa", "sefa-first")  # every layer z enters (where there are several); the first only
SEFA_EPS = 1e-12  # an output unit whose z-weights are all zero is left at zero, not divided by it


def sefa_all(weights: Sequence[Tensor], n: int) -> Tensor:
    """SeFa of every layer z enters (the authors' `layer_idx='all'`): the layers' z-weights
    stacked, (sum of out_l, z_dim), each output unit's row scaled to unit length as their
    released code does, then `sefa`. Scaling makes each unit count alike, whatever the scale of
    its layer's outputs. With one layer it is exactly `sefa` of that layer, unscaled: what
    hpdirs' first-layer SeFa has always been."""
    return sefa(weights[0] if len(weights) == 1 else _stacked(weights), n)


def sefa_of(generator: Generator, n: int, variant: str = "sefa") -> Tensor | None:
    """SeFa's n directions (n, z_dim) of a generator, or None where it has no layer to factorise.

    `sefa`: every layer z enters, together (sefa_all), for a generator that declares them
    (ZLayered), else its first layer; `sefa-first`: its first layer only (Factorisable, or the
    first of its declared z-layers). For a generator whose latent enters one layer, the two are
    the same directions."""
    if variant not in SEFA_VARIANTS:
        raise UsageError(f"unknown SeFa variant {variant!r}; choose from {', '.join(SEFA_VARIANTS)}")
    if variant == "sefa" and isinstance(generator, ZLayered):
        return sefa_all(generator.z_weights(), n)
    if isinstance(generator, Factorisable):
        return generator.sefa_directions(n)
    if isinstance(generator, ZLayered):
        return sefa(generator.z_weights()[0], n)
    return None


def sefa_spectrum(generator: Generator, variant: str = "sefa") -> Tensor | None:
    """The eigenvalues of W^T W behind `sefa_of`'s directions, largest first (z_dim,) in float64:
    how far each direction is from the next, which decides whether SeFa can order them at all.
    None for a generator with no layer to factorise, or one that gives directions only
    (Factorisable without ZLayered)."""
    if not isinstance(generator, ZLayered):
        return None
    weights = generator.z_weights()
    chosen = weights[0] if variant == "sefa-first" or len(weights) == 1 else _stacked(weights)
    return _sefa_eigen(chosen)[0]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" picks cuda > mps > cpu; an explicit device that is not present is a UsageError."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"`device` {name}: CUDA is not available on this machine; use `device` cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"`device` {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"`device` {name}: MPS is not available on this machine; use `device` cpu or auto")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev
