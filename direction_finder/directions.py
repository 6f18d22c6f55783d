"""Direction matrices: Gram-Schmidt orthonormalisation and the directions file other code loads.

The file is safetensors: tensor `directions` (N, z_dim) float32 with orthonormal rows (row n is
direction n), optionally `raw` (A before orthonormalisation), and string metadata with
`format` = hpdirs.directions/1. It holds no pickle and is readable with numpy alone:
`safetensors.numpy.load_file(path)["directions"]`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from direction_finder.errors import DirectionsFileError, UsageError
from direction_finder.files import write_bytes_atomic
from direction_finder.labels import read_labels, write_label

FORMAT = "hpdirs.directions/1"
ORTHONORMAL_TOLERANCE = 1e-4


def gram_schmidt(A: Tensor, *, check: bool = True) -> Tensor:
    """Orthonormalise the rows of A (N, D) -> Q (N, D), exactly as classical Gram-Schmidt.

    Row n of Q is A[n] minus its projection on rows 0..n-1, normalised. Computed as one reduced
    QR of A^T with the sign of R's diagonal made positive, which is the unique factorisation
    that classical Gram-Schmidt produces: vectorised, differentiable, and continuous in A
    (a tiny change in A gives a tiny change in Q). With `check`, rows that are linearly
    dependent (residual below rounding noise) raise ValueError naming the first such row.
    """
    if A.dim() != 2:
        raise ValueError(f"A must be a 2-D (N, D) matrix, got shape {tuple(A.shape)}")
    n, d = A.shape
    if n == 0 or n > d:
        raise ValueError(f"cannot make {n} orthonormal rows in {d} dimensions; need 1 <= N <= D")
    q, r = torch.linalg.qr(A.transpose(0, 1), mode="reduced")  # q: (D, N), r: (N, N)
    diag = torch.diagonal(r)  # (N,): the length of each row's residual
    if check:
        norms = A.detach().norm(dim=1)  # (N,)
        tol = 4 * max(n, d) * torch.finfo(A.dtype).eps
        bad = ~(diag.detach().abs() > tol * norms)  # also catches NaN/inf
        if bool(bad.any()):
            row = int(torch.nonzero(bad)[0])
            raise ValueError(
                f"rows of A are linearly dependent (row {row} lies in the span of rows before it, "
                "or A is not finite); re-initialise the directions"
            )
    signs = torch.where(diag < 0, -1.0, 1.0).to(q.dtype)  # (N,)
    return (q * signs).transpose(0, 1).contiguous()  # (N, D)


def orthonormal_directions(A: Tensor) -> Tensor:
    """The directions Q (N, D) that the parameters A (N, D) stand for, in every forward pass.

    For N < D this is gram_schmidt(A). For N = D the last row of GS(A) is fixed, up to sign, by
    the rows before it: its gradient w.r.t. A's last row is zero in exact arithmetic and float
    noise in practice, and Adam moves such an entry by +-lr whatever its size. That flips the last
    direction's sign at random (so runs on other thread counts, ranks or CPUs part ways) and lets
    the row wander into the span of the others (a crash). So for N = D the last row of A carries
    no parameter: Q's last row is the unit vector orthogonal to the other N - 1 rows, oriented so
    that det(Q) = +1. The objective is the same function of the other rows (the penalty does not
    depend on a direction's sign in expectation), and its gradient reaches them through this row.
    """
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        return gram_schmidt(A)  # N < D, or a shape gram_schmidt rejects with its own message
    if A.shape[0] == 1:
        return A * 0 + 1  # (1, 1): the one orientation with det +1, still a function of A
    head = gram_schmidt(A[:-1])  # (D - 1, D)
    return torch.cat([head, oriented_complement(head)[None]])  # (D, D)


def oriented_complement(head: Tensor) -> Tensor:
    """The unit vector u (D,) orthogonal to the D - 1 orthonormal rows of head, with
    det([head; u]) = +1; differentiable in head.

    u is found once without gradients (a complete QR in float64 on the CPU, where every device
    has float64, then the sign from the determinant, which is +-1 to rounding, so the sign never
    hangs on noise); then u = P c / |P c| with P = I - head^T head and c that value: the same
    vector, and a formula whose derivative is the derivative of the complement as head moves.
    """
    with torch.no_grad():
        rows = head.detach().to("cpu", torch.float64)  # (D - 1, D)
        q, _ = torch.linalg.qr(rows.T, mode="complete")  # (D, D); last column spans the complement
        c = q[:, -1]  # (D,)
        c = c * torch.sign(torch.linalg.det(torch.cat([rows, c[None]])))
        c = c.to(head.device, head.dtype)
    residual = c - head.T @ (head @ c)  # (D,)
    return residual / residual.norm()


def canonical_signs(Q: Tensor) -> Tensor:
    """Q (N, D) with each row's sign chosen so that its entries sum to a positive number.

    A direction and its negative are the same direction (the penalty and a sweep from -eta to
    +eta do not tell them apart), so saved files fix the sign and files written on different
    machines compare row by row. The sum is the rule whose tie is least likely to be crossed by
    rounding: it is ~N(0, 1) for a unit row, against a top-two gap of ~0.03 for "largest entry
    positive" at z_dim 128.
    """
    total = Q.sum(dim=1, keepdim=True)  # (N, 1)
    return Q * torch.where(total < 0, -1.0, 1.0).to(Q.dtype)


@dataclass
class Directions:
    """N orthonormal latent directions and where they came from."""

    matrix: Tensor  # (N, z_dim), orthonormal rows
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: Tensor | None = None  # (N, z_dim): A before Gram-Schmidt, when saved
    labels: dict[int, str] = field(default_factory=dict)  # names people gave directions (labels.json)

    @property
    def num_directions(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def z_dim(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def names(self) -> list[str]:
        """Each direction's label, or `d<index>` where it has none."""
        return [self.labels.get(i, f"d{i}") for i in range(self.num_directions)]

    def index(self, which: int | str) -> int:
        """The index of a direction given by index or by label."""
        if isinstance(which, str):
            found = [i for i, name in self.labels.items() if name == which]
            if not found:
                known = ", ".join(repr(v) for v in self.labels.values()) or "none"
                raise KeyError(f"no direction is named {which!r}; the names are {known}")
            return found[0]
        if isinstance(which, bool) or not isinstance(which, int) or not 0 <= which < self.num_directions:
            raise IndexError(f"direction {which!r} does not exist; this file has 0..{self.num_directions - 1}")
        return which

    def project(self, z: Tensor) -> Tensor:
        """The coordinates of z along the directions: z (n, z_dim) -> (n, N), (z_dim,) -> (N,)."""
        return z @ self.matrix.to(z.device, z.dtype).T

    def apply(self, z: Tensor, which: int | str, eta: float | Tensor) -> Tensor:
        """z' = z + eta * direction `which` (an index or a label); z (n, z_dim) or (z_dim,), eta a
        number or (n,) -> the shape of z."""
        d = self.matrix[self.index(which)].to(z.device, z.dtype)  # (z_dim,)
        eta = torch.as_tensor(eta, dtype=z.dtype, device=z.device)
        if z.dim() == 1:
            return z + eta * d
        return z + (eta.reshape(-1, 1) if eta.dim() else eta) * d


def _to_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in metadata.items():
        out[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def check_z_dim(matrix: Tensor, generator: Any) -> None:
    """Directions (N, z_dim) must live in the generator's latent space."""
    if matrix.shape[1] != int(generator.z_dim):
        raise UsageError(
            f"the directions have z_dim {matrix.shape[1]} but the generator has {generator.z_dim}; "
            "pass the `model` and `weights` they were learned with"
        )


def save_directions(
    path: str | os.PathLike, directions: Directions | Tensor, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write a directions file atomically. Metadata values that are not strings are stored as JSON."""
    from safetensors.torch import save

    if isinstance(directions, Tensor):
        directions = Directions(directions, dict(metadata or {}))
    elif metadata:
        directions = Directions(directions.matrix, {**directions.metadata, **metadata}, directions.raw)
    tensors = {"directions": directions.matrix.detach().to("cpu", torch.float32).contiguous()}
    if directions.raw is not None:
        tensors["raw"] = directions.raw.detach().to("cpu", torch.float32).contiguous()
    meta = _to_strings({**directions.metadata, "format": FORMAT})
    path = Path(path)
    write_bytes_atomic(path, save(tensors, metadata=meta))
    return path


def _parse(meta: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in ("format", "model", "class_name", "created", "weights", "weights_fingerprint"):
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def load_directions(path: str | os.PathLike) -> Directions:
    """Read a directions file (or a run folder's last directions).

    Anything that is not a valid hpdirs directions file raises DirectionsFileError.
    """
    from safetensors import safe_open

    path = resolve_directions_file(path)
    if not path.is_file():
        raise DirectionsFileError(f"directions file {path} does not exist; give a .safetensors file or a run folder")
    if path.stat().st_size == 0:
        raise DirectionsFileError(f"{path} is empty; it is not a directions file (re-run learn or pick another file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            keys = set(f.keys())
            tensors = {k: f.get_tensor(k) for k in keys & {"directions", "raw"}}
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DirectionsFileError(
            f"{path} is not a readable safetensors file ({first}); it is damaged, truncated or not a directions file"
        ) from None
    if meta.get("format") != FORMAT:
        found = meta.get("format", "none")
        raise DirectionsFileError(f"{path} has format {found!r}, not {FORMAT!r}; it was not written by this hpdirs")
    matrix = tensors.get("directions")
    if matrix is None or matrix.dim() != 2 or matrix.dtype != torch.float32:
        raise DirectionsFileError(f"{path} has no float32 (N, z_dim) tensor 'directions'")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise DirectionsFileError(
            f"{path} holds {matrix.shape[0]} directions of size {matrix.shape[1]}; "
            "it is not a directions file of a run (re-run learn or pick another file)"
        )
    if not bool(matrix.isfinite().all()):
        raise DirectionsFileError(f"{path}: 'directions' holds NaN or infinite values; the file is damaged")
    gram = matrix @ matrix.T
    if not torch.allclose(gram, torch.eye(matrix.shape[0]), atol=ORTHONORMAL_TOLERANCE):
        raise DirectionsFileError(f"{path}: the rows of 'directions' are not orthonormal; the file is damaged")
    labels = {i: name for i, name in read_labels(path).items() if i < matrix.shape[0]}
    return Directions(matrix, _parse(meta), tensors.get("raw"), labels)


def resolve_directions_file(run_or_file: str | os.PathLike) -> Path:
    """A directions file, or a run folder (its last directions, `directions.safetensors`)."""
    path = Path(run_or_file)
    if path.is_dir():
        candidate = path / "directions.safetensors"
        if not candidate.is_file():
            raise DirectionsFileError(f"run folder {path} has no directions.safetensors; is it an hpdirs run?")
        return candidate
    return path


def name_direction(run_or_file: str | Path, index: int, label: str | None) -> tuple[Path, dict[int, str]]:
    """`hpdirs label`: name direction `index` of a directions file (or a run's last directions);
    an empty label removes the name. Returns the file and its labels."""
    path = resolve_directions_file(run_or_file)
    directions = load_directions(path)  # a file that is not ours is refused before any label is written
    return path, write_label(path, index, label, directions.num_directions)
