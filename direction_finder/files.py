"""Files whole or absent, read within limits, written only where they belong.

Writing: every artifact (directions, checkpoints, logs, renders, reports, labels) goes through
`atomic_write`: a temp file made exclusively beside its target (never through a link), written
through its own descriptor, fsynced and renamed, with the user's umask. A command's output folder
(`staged_output`) is filled in a staging folder and committed whole.

Reading: every file hpdirs takes from a run, a cache or a directions file is opened without
blocking, must be a regular file and is read up to a size that fits its kind (`read_capped`,
`read_json`), so a FIFO, /dev/zero or a file of gigabytes is one line, not a hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from direction_finder.errors import UsageError

MiB = 2**20
JSON_LIMIT = MiB  # a JSON of settings, labels or a download record: kilobytes, never a megabyte
MAX_JSON_DEPTH = 32  # nesting of any JSON hpdirs reads from a file: its own files nest 4 deep
READ_BLOCK = MiB  # bytes read_capped asks for at a time


class UnfitFile(ValueError):
    """A file to read that is not a regular file, or larger than any file of its kind."""


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


# --- reading --------------------------------------------------------------------------------


@contextlib.contextmanager
def opened_regular(path: str | os.PathLike, limit: int, what: str) -> Iterator[BinaryIO]:
    """`path` opened for reading, once it is known to be a regular file of at most `limit` bytes.

    O_NONBLOCK: a FIFO opens at once (instead of waiting for a writer forever) and is then refused
    by its type, like a device (/dev/zero) or a folder. UnfitFile (a ValueError) says which."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnfitFile("it is not a regular file (a FIFO, a device or a folder)")
        if info.st_size > limit:
            raise UnfitFile(f"it holds {info.st_size} bytes, more than any {what} ({limit} at most)")
        stream = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def read_capped(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see opened_regular); a file that
    grows past the limit while it is read is refused too. Read in blocks: memory follows what
    the file holds, not the limit (a log's limit grows with the steps a run asks for)."""
    chunks, total = [], 0
    with opened_regular(path, limit, what) as stream:
        while chunk := stream.read(min(READ_BLOCK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UnfitFile(f"it holds more than {limit} bytes, more than any {what}")
    return b"".join(chunks)


def parse_json(text: str | bytes) -> Any:
    """JSON as every file hpdirs reads holds it: nested at most MAX_JSON_DEPTH levels (deeper
    would only exhaust the recursion of whatever walks it next); a ValueError otherwise, as for
    text that is not JSON or a number of more digits than Python converts."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"its JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"its JSON is nested more than {MAX_JSON_DEPTH} levels deep")
        level = [
            v for item in level if isinstance(item, (dict, list))
            for v in (item.values() if isinstance(item, dict) else item)
        ]  # fmt: skip
    return value


def read_json(path: str | os.PathLike, what: str, limit: int = JSON_LIMIT) -> Any:
    """A small JSON file (read_capped, then parse_json): OSError or ValueError saying why not."""
    return parse_json(read_capped(path, limit, what))


# --- writing --------------------------------------------------------------------------------

_THROUGH: dict[str, str] = {}  # /proc/self/fd/N of a folder held open -> the path it stands for


def shown_path(path: str | os.PathLike) -> str:
    """A path as the user knows it: a folder held open (/proc/self/fd/N) shown by its name."""
    text = str(path)
    for held, shown in list(_THROUGH.items()):
        if text == held or text.startswith(held + "/"):
            return shown + text[len(held) :]
    return text


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call write(stream) on a temp file beside `path`, fsync, then rename over `path`.

    The temp file is created exclusively (O_EXCL: never through a link planted in its place) and
    written through its own descriptor, never opened again by name; the rename replaces `path`
    itself, a link included, and never follows it. A crash, a signal or a full disk leaves the
    previous file intact and no partial file behind. The temp file gets the mode of an ordinary
    file under the user's umask (0644 under umask 022) before anything is written.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), shown_path(path)) from None
    try:
        with os.fdopen(fd, "wb") as stream:  # closes fd, whatever happens below
            os.fchmod(fd, 0o666 & ~current_umask())
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not the temp file that is gone
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), shown_path(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Bytes serialised in memory first, then written by Python's own file I/O: a full disk or a
    file-size limit arrives as an OSError with its errno (torch.save and safetensors would raise
    their own RuntimeError / SafetensorError that say only that writing failed)."""
    atomic_write(path, lambda stream: stream.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    """Text as UTF-8, whole or absent (atomic_write)."""
    write_bytes_atomic(path, text.encode("utf-8"))


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
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block is done, then reach the handler that was
    waiting for them: a few renames that must all happen, or none, are not cut in two. Only the
    main thread runs Python's signal handlers, so elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    for kind in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        handler = signal.getsignal(kind)
        if callable(handler):  # a Python handler, which would raise in the middle of the block
            previous[kind] = handler
            signal.signal(kind, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
        if caught:
            previous[signal.Signals(caught[0])](caught[0], None)


_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _held(fd: int, shown: Path) -> Path:
    """A path that reaches the folder open as `fd` whatever its name leads to later (Linux's
    /proc/self/fd), or, where there is none, its name."""
    via = Path("/proc/self/fd") / str(fd)
    if not via.is_dir():
        return shown
    _THROUGH[str(via)] = str(shown)
    return via


@contextlib.contextmanager
def staged_output(target: Path, ours: re.Pattern[str], *, owner: Path | None = None) -> Iterator[Path]:
    """The folder a command fills (a render, a comparison), whole: yields an empty staging folder
    inside `target`; when the block succeeds, its files replace the files of `target` they are
    named like, and files of `ours` (the names such a command writes) the new output lacks are
    removed, all under signals_held, so that `target` holds the previous output or the new one,
    never a mix. When the block fails, the staging folder goes and `target` is as it was (and
    gone again, if it was made for this).

    `owner`: the folder `target` belongs to (a run folder, or a directions file's folder), when
    hpdirs chose `target` itself. Then `target` must be a real folder directly in it: a link (a
    run from a tarball may carry one) or anything but a folder is refused with one line. In any
    case a file of `ours` in `target` that is a link or not a regular file is refused before any
    work, and the folders are held open while the block writes: on Linux every write goes through
    their descriptors, so a link planted in their place meanwhile is not followed."""
    target = Path(target)
    made = not os.path.lexists(target)  # for this command: removed again if it fails
    folder = _open_output_folder(target, owner)
    staging_fd, staging = -1, ""
    try:
        with os.scandir(folder) as entries:
            unfit = [e.name for e in entries if ours.fullmatch(e.name) and not e.is_file(follow_symlinks=False)]
        if unfit:
            raise UsageError(
                f"{target / unfit[0]} is a link or not a regular file, and hpdirs writes no file through a link: "
                "remove it, or choose another `out_dir`"
            )
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_held(folder, target))).name
        staging_fd = os.open(staging, _FOLDER_FLAGS | getattr(os, "O_NOFOLLOW", 0), dir_fd=folder)
        try:
            yield _held(staging_fd, target)
        except OSError as exc:  # name the user's folder, not /proc/self/fd/N
            if exc.filename is None:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), shown_path(exc.filename)) from None
        with signals_held():
            with os.scandir(staging_fd) as entries:
                new = {e.name for e in entries if e.is_file(follow_symlinks=False)}
            for name in sorted(new):
                os.replace(name, name, src_dir_fd=staging_fd, dst_dir_fd=folder)
            with os.scandir(folder) as entries:
                stale = [
                    e.name for e in entries
                    if ours.fullmatch(e.name) and e.name not in new and e.is_file(follow_symlinks=False)
                ]  # fmt: skip
            for name in stale:  # an earlier output's files the new one does not have
                os.unlink(name, dir_fd=folder)
    finally:
        for fd in (staging_fd, folder):
            _THROUGH.pop(str(Path("/proc/self/fd") / str(fd)), None)
        if staging_fd >= 0:
            with contextlib.suppress(OSError), os.scandir(staging_fd) as entries:  # what was not committed
                for entry in entries:
                    os.unlink(entry.name, dir_fd=staging_fd)
            os.close(staging_fd)
        if staging:
            with contextlib.suppress(OSError):
                os.rmdir(staging, dir_fd=folder)
        if made:
            with contextlib.suppress(OSError):  # empty only when the block failed
                os.rmdir(target)
        os.close(folder)


def _open_output_folder(target: Path, owner: Path | None) -> int:
    """The descriptor of `target`, made if needed (see staged_output for `owner`)."""
    if owner is None:
        writable_dir(target)
        return os.open(target, _FOLDER_FLAGS)
    if target.parent != owner:
        raise UsageError(f"{target} is not a folder of {owner}")
    parent = os.open(owner, _FOLDER_FLAGS)
    try:
        try:
            os.mkdir(target.name, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UsageError(f"cannot create {target} ({exc.strerror}); choose another `out_dir`") from None
        try:
            folder = os.open(target.name, _FOLDER_FLAGS | getattr(os, "O_NOFOLLOW", 0), dir_fd=parent)
        except OSError:
            raise UsageError(
                f"{target} is a link or not a folder, and hpdirs writes only inside {owner}: remove it, "
                "or choose another `out_dir`"
            ) from None
    finally:
        os.close(parent)
    if not os.access(target, os.W_OK):
        os.close(folder)
        raise UsageError(f"cannot write to {target}; choose another `out_dir`")
    return folder
