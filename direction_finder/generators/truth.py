"""Generators whose true factor directions are known, built to span the cases a user meets: where
the closed forms (SeFa, GANSpace) are blind by theory, where they are exact, where z enters
several layers, and a procedural image of a shape. `--model truth-flat` (and -aligned, -layers,
-shapes), with options `:z_dim=12,seed=0`.

In all of them the true factors are u = R z for the first `factors` rows of a seeded random
rotation R, so no factor is an axis of z. Their images:

- `truth-flat`: a first linear layer h = R_K z (every singular value 1), then each factor drives
  its own block of pixels through sin(freq_p h_j + phase_p) amp_p. W^T W of the first layer is
  a projection and the covariance of h is the identity: SeFa and GANSpace may return any rotation
  of the factors (blind by theory). The pixel Hessian is diagonal in the basis R, so the Hessian
  Penalty is zero exactly at the true directions.
- `truth-aligned`: the same with h = S R_K z, S of distinct strengths (2 down to 0.5): W^T W and
  the covariance of h have the factors as eigenvectors of distinct eigenvalues, so SeFa and
  GANSpace are exact (by theory); a learned set must match them.
- `truth-layers`: z enters two layers, as in BigGAN-deep. The first linear layer h0 = D z (4 z_dim
  units, distinct singular values along random directions: nothing to do with the factors) adds
  to the image linearly, which gives it the largest variance and no curvature at all; the deeper
  injection u = R_K z carries the factors, block by block as above. SeFa of the first layer, of
  every layer (D's normalised rows drown the factors' rows, which add a multiple of the identity)
  and GANSpace of the first layer find D's directions; the Hessian Penalty, blind to linear
  terms, is still zero exactly at the true directions.
- `truth-shapes`: a soft ellipse on grey, its x and y position, size, hue and rotation the five
  factors, read from the first five units of a flat first layer h = R z (z_dim 8: the other
  three directions change nothing). Factors meet in
  the same pixels (the ellipse's edge moves with position, size and rotation), so the Hessian is
  not exactly diagonal in any basis: the case the penalty's optimum is only near the truth.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from direction_finder.errors import UsageError
from direction_finder.generators.base import sefa
from direction_finder.generators.catalogue import TRUTH_ABOUT, TRUTH_DEFAULTS, TRUTH_PREFIX
from direction_finder.generators.synthetic import SineBlocks, random_rotation

KINDS = tuple(TRUTH_ABOUT)
PREFIX = TRUTH_PREFIX
DEFAULTS = TRUTH_DEFAULTS
TRUTH_LIMITS = {"z_dim": (1, 256), "seed": (0, 2**32 - 1)}
SIZE = 16  # pixels a side (shapes: 24)
SHAPES_SIZE = 24
STRENGTHS = (2.0, 0.5)  # truth-aligned: the first factor's strength down to the last's
DECOY_UNITS = 4  # truth-layers: units of the first layer per latent dimension
DECOY_SPECTRUM = (3.0, 0.3)  # its singular values, largest to smallest
DECOY_WEIGHT = 0.05  # how strongly the first layer adds to the image: a pixel std of ~0.2
SHAPE_FACTORS = ("x", "y", "size", "hue", "rotation")


def is_truth_model(name: object) -> bool:
    """Whether `name` names one of these generators (`truth-flat`, `truth-shapes:seed=3`, ...)."""
    return isinstance(name, str) and name.split(":", 1)[0] in {PREFIX + k for k in KINDS}


class KnownFactorGenerator:
    """z (n, z_dim) ~ N(0, I) -> images (n, 3, s, s); see the module's docstring for each kind.

    Capabilities: KnownTruth (`basis`, `true_directions`), Factorisable (SeFa of the first
    layer), ZLayered (`truth-layers`: both layers), Layered (`linear0`: the first layer's output,
    what GANSpace reads), Described."""

    def __init__(self, kind: str = "flat", z_dim: int | None = None, seed: int = 0, device: str | torch.device = "cpu"):
        if kind not in KINDS:
            raise UsageError(f"unknown known-truth kind {kind!r}; choose from {', '.join(KINDS)}")
        default_z, factors = DEFAULTS[kind]
        z_dim = default_z if z_dim is None else z_dim
        if kind == "shapes" and z_dim < factors:
            raise UsageError(f"{PREFIX}shapes has {factors} factors: z_dim must be at least {factors}, got {z_dim}")
        factors = factors if kind == "shapes" else z_dim
        self.kind, self.z_dim, self.factors, self.seed = kind, z_dim, factors, seed
        self.device = torch.device(device)
        self.name = PREFIX + kind
        g = torch.Generator().manual_seed(seed)
        basis = random_rotation(z_dim, g)  # (z_dim, z_dim), rows
        strengths = torch.linspace(*STRENGTHS, z_dim) if kind == "aligned" else torch.ones(z_dim)
        first = strengths[:, None] * basis  # (z_dim, z_dim): the first layer, h = first z
        self.size = size = SHAPES_SIZE if kind == "shapes" else SIZE
        pixels = 3 * size * size
        self.blocks = SineBlocks.draw(factors, pixels, g, self.device)  # drawn for every kind: one stream
        self.basis, self.first = basis.to(self.device), first.to(self.device)
        self.decoy: Tensor | None = None
        if kind == "layers":
            units = DECOY_UNITS * z_dim
            u, _, vh = torch.linalg.svd(
                torch.randn(units, z_dim, generator=g, dtype=torch.float64), full_matrices=False
            )
            spectrum = torch.logspace(math.log10(DECOY_SPECTRUM[0]), math.log10(DECOY_SPECTRUM[1]), z_dim)
            self.decoy = ((u * spectrum.double()) @ vh).float().to(self.device)  # (units, z_dim)
            mix = DECOY_WEIGHT * torch.randn(pixels, units, generator=g) / math.sqrt(units)  # (P, units)
            self.mix = mix.to(self.device)
        axis = torch.linspace(-1, 1, size, device=self.device)
        self.grid_y, self.grid_x = torch.meshgrid(axis, axis, indexing="ij")  # (s, s) each

    # --- the Generator protocol ---
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.z_dim, generator=generator).to(self.device)

    def __call__(self, z: Tensor) -> Tensor:
        z = z.to(self.device, torch.float32)  # (n, z_dim)
        if self.kind == "shapes":
            return self._shapes((z @ self.first.T)[:, : self.factors])  # the rest of h changes nothing
        pixels = self.blocks(z @ self.first.T)  # (n, P): every unit of the first layer is a factor
        if self.decoy is not None:  # truth-layers' first layer, linearly: in [-1, 1] but for its Gaussian tail
            pixels = 0.75 * pixels + (z @ self.decoy.T) @ self.mix.T
        return pixels.reshape(-1, 3, self.size, self.size)

    def _shapes(self, u: Tensor) -> Tensor:
        """A soft ellipse per sample: u (n, 5) = x, y, size, hue, rotation -> (n, 3, s, s)."""
        cx, cy = 0.45 * torch.tanh(u[:, 0] / 2), 0.45 * torch.tanh(u[:, 1] / 2)  # (n,)
        scale = torch.exp(0.3 * torch.tanh(u[:, 2] / 2))
        hue, angle = 0.8 * u[:, 3], 0.5 * u[:, 4]
        dx, dy = self.grid_x - cx[:, None, None], self.grid_y - cy[:, None, None]  # (n, s, s)
        cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        along, across = cos * dx + sin * dy, -sin * dx + cos * dy
        radius = (along / (0.4 * scale[:, None, None])) ** 2 + (across / (0.2 * scale[:, None, None])) ** 2
        mask = torch.sigmoid(6 * (1 - radius))  # (n, s, s): a soft edge, smooth for finite differences
        shifts = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], device=u.device)
        colour = 0.8 * torch.cos(hue[:, None] - shifts)  # (n, 3)
        background = -0.3
        return background + mask[:, None] * (colour[:, :, None, None] - background)  # (n, 3, s, s)

    # --- capabilities ---
    @property
    def true_directions(self) -> Tensor:
        """(factors, z_dim): the directions of the true factors, orthonormal rows."""
        return self.basis[: self.factors]

    def sefa_directions(self, n: int) -> Tensor:
        """SeFa of the first layer (its weight acting on z)."""
        return sefa(self.z_weights()[0], n)

    def z_weights(self) -> list[Tensor]:
        """The weights acting on z of every layer it enters: the first layer (and, for
        truth-layers, the deeper injection that carries the factors)."""
        if self.decoy is not None:
            return [self.decoy, self.basis[: self.factors]]
        return [self.first]

    def layers(self) -> dict[str, tuple[int, int, int]]:
        return {"linear0": (int(self._first_layer().shape[0]), 1, 1)}

    def features(self, z: Tensor, layer: str) -> Tensor:
        """The first linear layer's output (n, units, 1, 1): what GANSpace reads."""
        if layer != "linear0":
            raise ValueError(f"unknown layer {layer!r}; choose from linear0")
        return (z.to(self.device, torch.float32) @ self._first_layer().T)[:, :, None, None]

    def _first_layer(self) -> Tensor:
        return self.decoy if self.decoy is not None else self.first

    @property
    def spec(self) -> str:
        """The model name that rebuilds exactly this generator."""
        return f"{self.name}:z_dim={self.z_dim},seed={self.seed}"

    def describe(self) -> dict[str, Any]:
        return {"model": self.spec, "class_index": -1, "class_name": self.name, "truncation": 1.0, "weights": ""}


def parse_truth(name: str, device: str | torch.device = "cpu") -> KnownFactorGenerator:
    """`truth-flat` or `truth-shapes:z_dim=8,seed=3` -> the generator it names."""
    head, _, options = name.partition(":")
    if not is_truth_model(head):
        raise UsageError(f"{name!r} is not a known-truth model; use {', '.join(PREFIX + k for k in KINDS)}")
    kwargs: dict[str, int] = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key not in TRUTH_LIMITS or not (value.isascii() and value.isdigit() and len(value) < 20):
            raise UsageError(f"bad option {item!r} of {head}; use {head}:z_dim=12,seed=0")
        low, high = TRUTH_LIMITS[key]
        if not low <= int(value) <= high:
            raise UsageError(f"{name}: {key} must be from {low} to {high}, got {value}")
        kwargs[key] = int(value)
    return KnownFactorGenerator(head[len(PREFIX) :], device=device, **kwargs)


def matched_recovery(directions: Tensor, truth: Tensor) -> float:
    """Mean |cos| of a one-to-one matching of true directions (factors, z_dim) to directions
    (N, z_dim), N >= factors, that maximises it (the Hungarian method): 1 when every factor is
    one of the directions; a direction cannot stand for two factors."""
    from scipy.optimize import linear_sum_assignment

    cosines = (truth.double() @ directions.double().T).abs().cpu().numpy()  # (factors, N)
    rows, cols = linear_sum_assignment(-cosines)
    return float(cosines[rows, cols].mean())
