"""One way to check the numbers of every settings dataclass, with one wording of the error.

Errors name the setting as the library spells it, in backquotes (`batch_size`), so that a
library caller reads the parameter they passed and the command line can show its own flag
(--batch-size) in its place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from direction_finder.errors import UsageError


def integer(name: str, value: Any, low: int, high: int) -> int:
    """value, if it is an int (not a bool) in [low, high]; else a UsageError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"`{name}` must be an integer from {low} to {high:,}, got {value!r}")
    return value


def positive(name: str, value: Any, high: float) -> float:
    """value, if it is a finite real number in (0, high]; else a UsageError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise UsageError(f"`{name}` must be a finite number > 0, got {value!r}")
    if value > high:
        raise UsageError(f"`{name}` must be at most {high:g}, got {value!r}")
    return float(value)


def within(name: str, value: Any, low: float, high: float) -> float:
    """value, if it is a real number in [low, high]; else a UsageError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UsageError(f"`{name}` must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def one_of(name: str, value: Any, choices: Iterable[str]) -> str:
    """value, if it is one of `choices`; else a UsageError listing them."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]
        raise UsageError(f"`{name}` must be {listed}, got {value!r}")
    return str(value)


def check_fields(
    settings: Any,
    integers: Mapping[str, tuple[int, int]] | None = None,
    positives: Mapping[str, float] | None = None,
    optional: Iterable[str] = (),
) -> None:
    """Check the named fields of a settings object. A field named in `optional` may also be None
    (there, None means "the default for this generator or device")."""
    may_be_none = set(optional)
    for name, (low, high) in (integers or {}).items():
        value = getattr(settings, name)
        if value is not None or name not in may_be_none:
            integer(name, value, low, high)
    for name, top in (positives or {}).items():
        value = getattr(settings, name)
        if value is not None or name not in may_be_none:
            positive(name, value, top)


def plain(message: str) -> str:
    """A message with its backquoted setting names as plain words: for a message about a value
    read from a file, where the name is a field of the file, not a parameter or a flag."""
    import re

    return re.sub(r"`([a-z_]+)`", r"\1", message)


_SIZE_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}  # bare K/M/G/T: binary, as in Slurm


def parse_memory(text: str, name: str = "max_memory") -> float:
    """`8GiB`, `512MiB`, `16GB` (decimal), `8G` (binary) or a bare number of MiB; in MiB."""
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?)(b?)", str(text).strip().lower())
    if match is None or (match.group(3) and not match.group(4)) or (match.group(4) and not match.group(2)):
        raise UsageError(f"`{name}` {text!r} is not a memory size; write e.g. 8GiB, 512MiB or 16GB")
    number, unit, binary, byte = match.groups()
    factor = 10 ** {"k": 3, "m": 6, "g": 9, "t": 12}[unit] if byte and not binary else _SIZE_UNITS[unit]
    mib = float(number) * factor / 2**20
    if not 16 <= mib <= 2**30:
        raise UsageError(f"`{name}` {text!r} must be from 16MiB to 1PiB")
    return mib
