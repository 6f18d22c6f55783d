"""Writing files so that they are whole or absent, with the user's umask: what every module that
writes an artifact (directions, checkpoints, logs, renders, reports, labels) writes through."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from direction_finder.errors import UsageError


def current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Any) -> None:
    """Call write(tmp_path) on a temp file beside `path`, fsync, then rename over `path`.

    A crash, a signal or a full disk leaves the previous file intact and no partial file behind.
    The temp file is made with mode 0600; it gets the mode of an ordinary file created under the
    user's umask (0644 under umask 022) before anything is written, so a gallery can be served.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not the temp file that is gone
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Bytes serialised in memory first, then written by Python's own file I/O: a full disk or a
    file-size limit arrives as an OSError with its errno (torch.save and safetensors would raise
    their own RuntimeError / SafetensorError that say only that writing failed)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def writable_dir(path: str | os.PathLike) -> Path:
    """Create the output folder `path` if needed; a UsageError if it cannot be written."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out} ({exc.strerror}); choose another `out_dir`") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"cannot write to {out}; choose another `out_dir`")
    return out


@contextlib.contextmanager
def removed_if_failed(folder: Path) -> Iterator[None]:
    """Remove `folder` again when what was to fill it fails and it is still empty: a failed
    command leaves no empty output folder behind (one that existed before is kept)."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):  # not empty (or gone): leave it
                folder.rmdir()
        raise
