"""Names people give to directions ("zoom", "rotate"), kept beside the directions they name.

A folder's labels.json holds the labels of every directions file in it, by file name and
direction index:

    {"format": "hpdirs.labels/1",
     "files": {"directions.safetensors": {"3": "zoom", "7": "background"}},
     "layers": {"directions.safetensors": {"3": [0, 3]}}}

"layers" is optional: the latent layers (first, last) a named direction is applied to by
default (GANSpace's layer-wise edits; `hpdirs label RUN 3 zoom --layers 0-3`).

A run folder's directions.safetensors and directions_best.safetensors are different matrices, so
each has labels of its own. The file is written atomically, and its read-modify-write holds an
exclusive lock on the folder (flock), so writes from several threads or processes at once all
land. A damaged or hand-edited file that breaks the rules below is one clear error.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from direction_finder.errors import DirectionsFileError, HpdirsWarning, UsageError
from direction_finder.files import read_json, write_bytes_atomic

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

LABELS_FORMAT = "hpdirs.labels/1"
LABELS_NAME = "labels.json"
MAX_LABEL = 64  # characters: a name, not a description
LABELS_LIMIT = 4 * 2**20  # bytes: 64-character names of thousands of directions of a few files
MAX_INDEX_DIGITS = 6  # a direction index is below z_dim: never a million


def labels_path(directions_file: Path) -> Path:
    """The labels.json that holds the labels of `directions_file`."""
    return directions_file.parent / LABELS_NAME


Store = tuple[dict[str, dict[str, str]], dict[str, dict[str, list[int]]]]  # names, layer ranges


def _read_store(path: Path) -> Store:
    if not os.path.lexists(path):
        return {}, {}
    try:
        body = read_json(path, LABELS_NAME, LABELS_LIMIT)
        if not isinstance(body, dict) or body.get("format") != LABELS_FORMAT:
            raise ValueError(f"its format is not {LABELS_FORMAT}")
        files = body.get("files")
        if not isinstance(files, dict):
            raise ValueError("it has no 'files' object")
        for name, labels in files.items():
            if not isinstance(labels, dict) or not all(_is_index(k) and isinstance(v, str) for k, v in labels.items()):
                raise ValueError(f"the labels of {name} are not index -> name")
            for value in labels.values():
                if check_label(value) != value or value.isdigit():
                    raise ValueError(f"{value!r} is not a label (1 to {MAX_LABEL} printable characters, not a number)")
        layers = body.get("layers", {})
        if not isinstance(layers, dict):
            raise ValueError("its 'layers' is not an object")
        for name, ranges in layers.items():
            named = files.get(name, {})
            if not isinstance(ranges, dict) or not all(
                k in named and _is_range(v) for k, v in ranges.items()
            ):  # fmt: skip
                raise ValueError(f"the layers of {name} are not index -> [first, last] of a named direction")
        return {str(name): dict(labels) for name, labels in files.items()}, {str(n): dict(r) for n, r in layers.items()}
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and UsageError are ValueErrors
        raise DirectionsFileError(f"{path} is damaged ({exc}); fix it or delete it (the labels are lost)") from None


def _is_index(key: object) -> bool:
    return isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= MAX_INDEX_DIGITS


def _is_range(value: object) -> bool:
    return (
        isinstance(value, list) and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10_000 for v in value)
        and value[0] <= value[1]
    )  # fmt: skip


def read_label_layers(directions_file: str | Path) -> dict[int, tuple[int, int]]:
    """The latent layers (first, last) named directions of one file are applied to by default."""
    path = Path(directions_file)
    ranges = _read_store(labels_path(path))[1].get(path.name, {})
    return {int(k): (v[0], v[1]) for k, v in ranges.items()}


def parse_layer_range(text: str, count: int | None = None) -> tuple[int, int]:
    """`0-3` or `5` -> (first, last) latent layers: the one reading of a layer range (label,
    render, the explorer). ASCII digits only (int() would also take '٣'); with `count`, the
    layers a generator has, the range must lie within 0..count-1."""
    first, dash, last = str(text).strip().partition("-")
    parts = [first, last] if dash else [first, first]
    if not all(p.strip().isascii() and p.strip().isdigit() and len(p.strip()) <= 4 for p in parts):
        raise UsageError(f"`layers` {text!r} is not a range of layers such as 0-3")
    pair = [int(p) for p in parts]
    if not _is_range(pair):
        raise UsageError(f"`layers` {text!r} is not a range of layers such as 0-3")
    if count is not None and pair[1] >= count:
        raise UsageError(f"`layers` {text!r} is outside this generator's layers 0-{count - 1}")
    return pair[0], pair[1]


def read_labels(directions_file: str | Path) -> dict[int, str]:
    """The labels of one directions file: index -> name (empty when none were given)."""
    path = Path(directions_file)
    return {int(k): v for k, v in _read_store(labels_path(path))[0].get(path.name, {}).items()}


def check_label(label: str) -> str:
    """A label, stripped: 1..MAX_LABEL printable characters (str.isprintable: no control, format or
    separator characters such as U+202E or U+2028, which would reorder or break the captions,
    tables and pages it is shown in), not a bare number (an index)."""
    text = label.strip() if isinstance(label, str) else label
    if not isinstance(text, str) or not text or len(text) > MAX_LABEL or not text.isprintable():
        raise UsageError(f"a label is 1 to {MAX_LABEL} printable characters, got {label!r}")
    if text.isdigit():
        raise UsageError(f"label {text!r} is a number, which would read as an index; use a word")
    return text


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` for one read-modify-write of its labels.json. flock locks an
    open file description, so two threads of one process exclude each other as two processes do;
    the lock goes with the descriptor, even when a process dies holding it."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: one writer at a time is the user's to keep
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_label(
    directions_file: str | Path,
    index: int,
    label: str | None,
    num_directions: int,
    layers: tuple[int, int] | None = None,
) -> dict[int, str]:
    """Name direction `index` of `directions_file` (None or "" removes its name, and its layers);
    `layers` (first, last) stores the latent layers it is applied to by default. Returns the
    file's labels. Two directions of one file cannot share a name. Safe to call from several
    threads and processes at once: each call's change is kept."""
    path = Path(directions_file)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < num_directions:
        raise UsageError(f"direction {index!r} does not exist; this file has 0..{num_directions - 1}")
    text = None if label is None or label == "" else check_label(label)  # only "" removes: "  " is a mistake
    if layers is not None and (text is None or not _is_range(list(layers))):
        raise UsageError("`layers` go with a name: give the direction a name and its layers, e.g. zoom and 0-3")
    store = labels_path(path)
    with _locked(store.parent):
        everything, ranges = _read_store(store)
        labels = {int(k): v for k, v in everything.get(path.name, {}).items()}
        own = {int(k): v for k, v in ranges.get(path.name, {}).items()}
        if text is None:
            labels.pop(index, None)
            own.pop(index, None)
        else:
            taken = [i for i, name in labels.items() if name == text and i != index]
            if taken:
                raise UsageError(f"direction {taken[0]} is already named {text!r}; choose another name")
            labels[index] = text
            if layers is not None:
                own[index] = list(layers)
        everything[path.name] = {str(i): labels[i] for i in sorted(labels)}
        ranges[path.name] = {str(i): own[i] for i in sorted(own)}
        ranges = {name: r for name, r in ranges.items() if r}
        body: dict[str, object] = {"format": LABELS_FORMAT, "files": everything}
        if ranges:
            body["layers"] = ranges
        data = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        write_bytes_atomic(store, data)
    return labels


def label_ranges(
    generator: Generator, label_layers: Mapping[int, tuple[int, int]], labels: Mapping[int, str]
) -> dict[int, range]:
    """The latent layers labels give named directions, checked against the generator (render and the
    explorer apply them alike); a generator without layer-wise latents shows them on all layers,
    with a warning."""
    from direction_finder.generators.base import LayerwiseLatent  # here: render's help reads this module

    if not label_layers:
        return {}
    if not isinstance(generator, LayerwiseLatent):
        warnings.warn("the labels give some directions latent layers, but this generator has no layer-wise "
                      "latents; they are rendered on every layer", HpdirsWarning, stacklevel=3)  # fmt: skip
        return {}
    ranges = {}
    for index, (first, last) in label_layers.items():
        if last >= generator.latent_layers:
            raise UsageError(
                f"label {labels.get(index, index)!r} gives direction {index} the layers {first}-{last}, but this "
                f"generator has layers 0-{generator.latent_layers - 1}; label it again with other `layers`"
            )
        ranges[index] = range(first, last + 1)
    return ranges
