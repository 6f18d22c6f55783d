"""A package's public names, each imported from its module when first used (PEP 562): the
packages whose light parts the command line's help reads must not import torch on the way."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def homes(**modules: Iterable[str]) -> dict[str, str]:
    """name -> the module (relative to the package) that defines it, from module -> names."""
    return {name: module for module, names in modules.items() for name in names}


def lazy(package: str, home: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`: a name of `home` is imported from its module on
    first use and kept in the package's namespace."""
    namespace = importlib.import_module(package).__dict__

    def getattr_(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home[name]}"), name)
        namespace[name] = value  # found once
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *home})

    return getattr_, dir_
