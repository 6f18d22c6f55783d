"""A generator whose true latent directions are known: for tests, benchmarks and the offline demo.

Each true factor u_j = r_j . z (r_j the rows of a seeded random orthogonal matrix R) drives its
own block of pixels through a smooth nonlinear map, and no pixel depends on two factors. So in
the basis R the pixel Hessian is exactly diagonal, and with N = z_dim directions the Hessian
Penalty is zero exactly when every effective r_j is one of the learned directions (up to sign):
the global minimum is at the true directions, with finite differences of any step size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from direction_finder.errors import UsageError

# What parse_synthetic accepts: a test model, never large (a z_dim of 10**6 would be a 8 TB QR);
# the seed within the 32 bits torch's CPU generator keeps.
SYNTHETIC_LIMITS = {"z_dim": (1, 4096), "factors": (1, 4096), "size": (1, 1024), "seed": (0, 2**32 - 1)}


def random_rotation(z_dim: int, g: torch.Generator) -> Tensor:
    """A random rotation (z_dim, z_dim) as rows, drawn from `g`: the QR of a Gaussian matrix, its
    signs fixed so that the draw decides it alone."""
    q, r = torch.linalg.qr(torch.randn(z_dim, z_dim, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).T.float().contiguous()


@dataclass(frozen=True)
class SineBlocks:
    """Factors that each drive a block of pixels of their own: pixel p of factor j is
    sin(freq_p u_j + phase_p) amplitude_p, the blocks splitting the P pixels evenly. No pixel
    depends on two factors, so the pixel Hessian is diagonal in the factors' coordinates."""

    owner: Tensor  # (P,): the factor of each pixel
    freq: Tensor  # (P,)
    phase: Tensor  # (P,)
    amplitude: Tensor  # (P,)

    @classmethod
    def draw(cls, factors: int, pixels: int, g: torch.Generator, device: torch.device) -> SineBlocks:
        owner = torch.arange(pixels) * factors // pixels
        freq = 0.5 + torch.rand(pixels, generator=g)
        phase = 2 * torch.pi * torch.rand(pixels, generator=g)
        amplitude = 0.5 + 0.5 * torch.rand(pixels, generator=g)
        return cls(*(t.to(device) for t in (owner, freq, phase, amplitude)))

    def __call__(self, u: Tensor) -> Tensor:
        """Factor values u (n, factors) -> pixels (n, P)."""
        return torch.sin(u[:, self.owner] * self.freq + self.phase) * self.amplitude


class SyntheticGenerator:
    """z (n, z_dim) ~ N(0, I) -> images (n, 3, size, size) in [-1, 1].

    Pixel p in block j is sin(freq_p * u_j + phase_p) * amplitude_p with u_j = r_j . z; blocks
    split the flattened image evenly among the `factors` effective directions; the remaining
    z_dim - factors directions of R leave the image unchanged.
    """

    def __init__(
        self, z_dim: int = 8, factors: int = 4, size: int = 8, seed: int = 0, device: str | torch.device = "cpu"
    ) -> None:
        if not 1 <= factors <= z_dim:
            raise ValueError(f"factors must be in 1..z_dim ({z_dim}), got {factors}")
        g = torch.Generator().manual_seed(seed)
        basis = random_rotation(z_dim, g)  # (z_dim, z_dim)
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.z_dim, self.factors, self.size, self.seed = z_dim, factors, size, seed
        self.device = torch.device(device)
        self.basis = basis.to(self.device)
        self.blocks = SineBlocks.draw(factors, 3 * size * size, g, self.device)
        self.name = "synthetic"

    @property
    def true_directions(self) -> Tensor:
        """The effective true directions r_j, (factors, z_dim), orthonormal rows."""
        return self.basis[: self.factors]

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.z_dim, generator=generator).to(self.device)

    def factors_of(self, z: Tensor) -> Tensor:
        return z @ self.true_directions.T  # (n, factors)

    def __call__(self, z: Tensor) -> Tensor:
        u = self.factors_of(z.to(self.device, torch.float32))  # (n, factors)
        return self.blocks(u).reshape(-1, 3, self.size, self.size)

    @property
    def spec(self) -> str:
        """The model name that rebuilds exactly this generator: `synthetic:z_dim=8,...`."""
        return f"synthetic:z_dim={self.z_dim},factors={self.factors},size={self.size},seed={self.seed}"

    def describe(self) -> dict:
        return {"model": self.spec, "class_index": -1, "class_name": "synthetic", "truncation": 1.0, "weights": ""}


def parse_synthetic(name: str, device: str | torch.device = "cpu") -> SyntheticGenerator:
    """`synthetic` or `synthetic:z_dim=16,factors=6,size=8,seed=0` -> the generator it names."""
    head, _, options = name.partition(":")
    if head != "synthetic":
        raise UsageError(f"{name!r} is not a synthetic model name")
    kwargs: dict[str, int] = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        digits = value.strip().lstrip("-")
        if key not in SYNTHETIC_LIMITS or not (digits.isascii() and digits.isdigit() and len(digits) < 20):
            raise UsageError(f"bad synthetic option {item!r}; use synthetic:z_dim=16,factors=4,size=8,seed=0")
        kwargs[key] = int(value)
    for key, number in kwargs.items():
        low, high = SYNTHETIC_LIMITS[key]
        if not low <= number <= high:
            raise UsageError(f"{name}: {key} must be from {low} to {high}, got {number}")
    try:
        return SyntheticGenerator(**kwargs, device=device)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def recovery_score(directions: Tensor, truth: Tensor) -> float:
    """Mean over true directions r_j of max_n |q_n . r_j|: 1 when each is recovered exactly."""
    cosines = (truth.float() @ directions.float().T).abs()  # (factors, N)
    return float(cosines.max(dim=1).values.mean())
