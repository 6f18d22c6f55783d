"""The user's own latents (sampled elsewhere, or from an inversion or an encoder), read from a
.npy of shape (n, z_dim) or (z_dim,), checked, as float32 rows."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor

from direction_finder.errors import UsageError
from direction_finder.files import read_capped, write_bytes_atomic

HEADER_LIMIT = 2**16  # bytes of a .npy header (numpy's own reading limit is 10000)


def _header(stream: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy header declares, read before any data: an array is checked
    before memory is given to it (a header may claim 10**13 rows)."""
    start = stream.read(2)
    stream.seek(0)
    if start == b"PK":
        raise UsageError(f"{where} holds several arrays (.npz); give a .npy of shape (n, z_dim)")
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f".npy format version {version} (structured arrays) is not latents")
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise UsageError(f"{where} is not a .npy array ({' '.join(str(exc).split())[:120]})") from None
    stream.seek(0)
    return tuple(shape), dtype


def read_latents(source: str | os.PathLike | bytes, z_dim: int, limit: int) -> Tensor:
    """(n, z_dim) float32 latents, 1 <= n <= limit, from a .npy file or its bytes; a UsageError
    that says what is wrong otherwise (no pickles are ever loaded). Every value must be finite
    once in float32: a float64 of 1e300 is not a latent."""
    where = "the upload" if isinstance(source, bytes) else str(source)
    cap = limit * z_dim * 8 + HEADER_LIMIT  # float64 rows at most, and a header
    try:  # read whole, never from a FIFO or a device
        data = source if isinstance(source, bytes) else read_capped(source, cap, f".npy of {limit} latents")
    except FileNotFoundError:
        raise UsageError(f"`latents` {where} does not exist; give a .npy file of shape (n, {z_dim})") from None
    except OSError as exc:
        raise UsageError(f"`latents` {where} cannot be read ({exc.strerror}); give a .npy file") from None
    except ValueError as exc:
        raise UsageError(
            f"`latents` {where} cannot be latents ({exc}); give a .npy file of shape (n, {z_dim})"
        ) from None
    stream: BinaryIO = io.BytesIO(data)
    with stream:
        shape, dtype = _header(stream, where)
        rows = shape if len(shape) != 1 else (1, *shape)
        if len(rows) != 2 or rows[1] != z_dim or not 1 <= rows[0] <= limit:
            raise UsageError(f"latents must have shape (n, {z_dim}) with 1 <= n <= {limit}, got {shape} in {where}")
        if not np.issubdtype(dtype, np.floating):
            raise UsageError(f"latents must be finite floats, got {dtype} in {where}")
        try:
            array = np.load(stream, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UsageError(f"{where} is not a .npy array ({' '.join(str(exc).split())[:120]})") from None
    with np.errstate(over="ignore", invalid="ignore"):
        single = np.asarray(array, dtype=np.float32).reshape(rows)
    if not np.isfinite(single).all():
        raise UsageError(f"latents must be finite floats, and within float32's range; {where} has values that are not")
    return torch.from_numpy(single.copy())


def write_latents(path: Path, z: Tensor) -> None:
    """z (n, z_dim) as a float32 .npy, written atomically: what --latents reads back."""
    buffer = io.BytesIO()
    np.save(buffer, z.detach().cpu().numpy().astype(np.float32))
    write_bytes_atomic(path, buffer.getvalue())
