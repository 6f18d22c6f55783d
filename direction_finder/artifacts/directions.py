"""The directions file other code loads, and the `Directions` it holds (names, apply, project).

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
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from direction_finder.artifacts.labels import parse_layer_range, read_label_layers, read_labels, write_label
from direction_finder.errors import DirectionsFileError, UsageError
from direction_finder.files import opened_regular, parse_json, write_bytes_atomic
from direction_finder.method.sweeps import layer_edit

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

FORMAT = "hpdirs.directions/1"
LAST_NAME = "directions.safetensors"  # a run folder's last directions
ORTHONORMAL_TOLERANCE = 1e-4
MAX_FILE_BYTES = 256 * 2**20  # two float32 (N, z_dim) matrices of z_dim 4096, and the header


@dataclass
class Directions:
    """N orthonormal latent directions and where they came from.

    Attributes:
        matrix: (N, z_dim) float32 with orthonormal rows; row n is direction n.
        metadata: what the file records: model, class, truncation, weights, config, step, losses.
        raw: A before Gram-Schmidt, (N, z_dim), where the file holds it.
        labels: index -> the name people gave the direction (labels.json).
        label_layers: index -> the latent layers (first, last) a named direction edits.
    """

    matrix: Tensor  # (N, z_dim), orthonormal rows
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: Tensor | None = None  # (N, z_dim): A before Gram-Schmidt, when saved
    labels: dict[int, str] = field(default_factory=dict)  # names people gave directions (labels.json)
    label_layers: dict[int, tuple[int, int]] = field(default_factory=dict)  # a named direction's latent layers

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

    def apply(
        self, z: Tensor, which: int | str, eta: float | Tensor, layers: range | None = None, latent_layers: int = 0
    ) -> Tensor:
        """z' = z + eta * direction `which` (an index or a label); z (n, z_dim) or (z_dim,), eta a
        number or (n,) -> the shape of z.

        With `layers` (a range of a LayerwiseLatent generator's `latent_layers` layers), only
        those layers see the edit (GANSpace's layer-wise edits): -> (n, latent_layers, z_dim)
        (or (latent_layers, z_dim)), z itself on every other layer, for `generator.layerwise`."""
        d = self.matrix[self.index(which)].to(z.device, z.dtype)  # (z_dim,)
        eta = torch.as_tensor(eta, dtype=z.dtype, device=z.device)
        edited = z + eta * d if z.dim() == 1 else z + (eta.reshape(-1, 1) if eta.dim() else eta) * d
        if layers is None:
            return edited
        return layer_edit(z, edited, layers, latent_layers)


def _to_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in metadata.items():
        out[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def check_z_dim(matrix: Tensor, generator: Generator) -> None:
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
            out[key] = parse_json(value)
        except ValueError:  # not JSON, or nested too deep to be ours: kept as the text it is
            out[key] = value
    return out


def load_directions(path: str | os.PathLike) -> Directions:
    """Read a directions file (or a run folder's last directions).

    Anything that is not a valid hpdirs directions file raises DirectionsFileError.
    """
    from safetensors import safe_open

    path = resolve_directions_file(path)
    if not os.path.lexists(path):
        raise DirectionsFileError(f"directions file {path} does not exist; give a .safetensors file or a run folder")
    try:
        with opened_regular(path, MAX_FILE_BYTES, "directions file") as stream:
            empty = stream.read(1) == b""
    except (OSError, ValueError) as exc:
        raise DirectionsFileError(f"{path} cannot be a directions file ({exc})") from None
    if empty:
        raise DirectionsFileError(f"{path} is empty; it is not a directions file (re-run learn or pick another file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            keys = set(f.keys()) & {"directions", "raw"}
            _check_shapes(path, {k: f.get_slice(k) for k in keys})
            tensors = {k: f.get_tensor(k) for k in keys}
    except DirectionsFileError:
        raise
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
    layers = {i: pair for i, pair in read_label_layers(path).items() if i in labels}
    return Directions(matrix, _parse(meta), tensors.get("raw"), labels, layers)


def _check_shapes(path: Path, slices: dict[str, Any]) -> None:
    """The tensors' shapes and types, from the header, before any is loaded: (N, z_dim) float32
    with N <= z_dim (N orthonormal rows need N dimensions), so that no N x N product is ever
    asked of a file that claims 15000 directions of size 1."""
    for name, part in slices.items():
        shape, dtype = tuple(part.get_shape()), part.get_dtype()
        if len(shape) != 2 or dtype != "F32":
            raise DirectionsFileError(f"{path} has no float32 (N, z_dim) tensor {name!r} ({dtype} {list(shape)})")
        if shape[0] > shape[1]:
            raise DirectionsFileError(
                f"{path}: {name!r} holds {shape[0]} directions of size {shape[1]}, but at most {shape[1]} "
                "orthonormal directions exist in that space; the file is damaged or not ours"
            )
    shapes = {tuple(part.get_shape()) for part in slices.values()}
    if len(shapes) > 1:
        raise DirectionsFileError(f"{path}: 'directions' and 'raw' differ in shape; the file is damaged")


def resolve_directions_file(run_or_file: str | os.PathLike) -> Path:
    """A directions file, or a run folder (its last directions, `directions.safetensors`)."""
    path = Path(run_or_file)
    if path.is_dir():
        candidate = path / LAST_NAME
        if not os.path.lexists(candidate):  # anything but a regular file is refused when it is read
            raise DirectionsFileError(f"run folder {path} has no directions.safetensors; is it an hpdirs run?")
        return candidate
    return path


def name_direction(
    run_or_file: str | Path, index: int, label: str | None, layers: str | None = None
) -> tuple[Path, dict[int, str]]:
    """`hpdirs label`: name direction `index` of a directions file (or a run's last directions);
    an empty label removes the name; `layers` (`0-3`) stores the latent layers the named direction
    is applied to by default (checked against the generator when it is rendered). Returns the file
    and its labels."""
    path = resolve_directions_file(run_or_file)
    directions = load_directions(path)  # a file that is not ours is refused before any label is written
    pair = parse_layer_range(layers) if layers is not None else None
    return path, write_label(path, index, label, directions.num_directions, pair)
