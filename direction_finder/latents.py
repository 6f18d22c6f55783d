"""The user's own latents (sampled elsewhere, or from an inversion or an encoder), read from a
.npy of shape (n, z_dim) or (z_dim,), checked, as float32 rows."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from direction_finder.errors import UsageError


def read_latents(source: str | os.PathLike | bytes, z_dim: int, limit: int) -> Tensor:
    """(n, z_dim) float32 latents, 1 <= n <= limit, from a .npy file or its bytes; a UsageError
    that says what is wrong otherwise (no pickles are ever loaded)."""
    where = "the upload" if isinstance(source, bytes) else str(source)
    try:
        data = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
        array = np.load(data, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"`latents` {where} does not exist; give a .npy file of shape (n, {z_dim})") from None
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"{where} is not a .npy array ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(array, np.ndarray):
        raise UsageError(f"{where} holds several arrays (.npz); give a .npy of shape (n, {z_dim})")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != z_dim or not 1 <= array.shape[0] <= limit:
        raise UsageError(f"latents must have shape (n, {z_dim}) with 1 <= n <= {limit}, got {array.shape} in {where}")
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise UsageError(f"latents must be finite floats, got {array.dtype} in {where}")
    return torch.from_numpy(array.astype(np.float32))


def write_latents(path: Path, z: Tensor) -> None:
    """z (n, z_dim) as a float32 .npy, written atomically: what --latents reads back."""
    from direction_finder.directions import write_bytes_atomic

    buffer = io.BytesIO()
    np.save(buffer, z.detach().cpu().numpy().astype(np.float32))
    write_bytes_atomic(path, buffer.getvalue())
