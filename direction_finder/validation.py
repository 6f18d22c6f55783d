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


# --- text the command line takes: durations and comma lists, one grammar each ---------------

# a number and its unit, always: a bare number means images in `budget`, so it means nothing here
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
DAY_S = 86400.0


def is_duration(text: str) -> bool:
    """Whether `text` reads as a duration: a number with s, m or h (or sec, min, hours, ...)."""
    return _DURATION.fullmatch(str(text).strip().lower()) is not None


def parse_duration(name: str, text: str, days: int) -> float:
    """`90s`, `30m`, `30min`, `1.5h` -> seconds, from 1 s to `days` days: the one grammar of every
    duration hpdirs takes (`time_limit`, `budget`). The unit is required: a bare number is a count
    of images where a budget takes one, and ambiguous anywhere else."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if match is None:
        bare = re.fullmatch(r"\d+(?:\.\d*)?", str(text).strip()) is not None
        why = "has no unit" if bare else "is not a duration"
        raise UsageError(f"`{name}` {text!r} {why}; give one such as 90s, 30m or 2h")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)[0]]
    if not 1 <= seconds <= days * DAY_S:
        raise UsageError(f"`{name}` {text!r} must be from 1 second to {days:,} days")
    return seconds


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 step`, `3 steps`, `1,000 ImageNet classes`: a count and its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def format_duration(seconds: float) -> str:
    """Seconds as `1h 05m`, `3m 07s` or `12s`: how every duration is shown."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def parse_integers(name: str, text: str) -> list[int]:
    """`1,4,16` -> [1, 4, 16] (blanks between commas ignored); a UsageError naming `name` else."""
    try:
        return [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"`{name}` {text!r}: give comma-separated integers, e.g. 1,4") from None
