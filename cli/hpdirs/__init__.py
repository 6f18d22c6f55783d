"""`import hpdirs`: the library under the project's name. Every name here is the very object of
direction_finder (the library's own package), so code may use either."""

from direction_finder import *  # noqa: F403 - the library's public names, re-exported as they are
from direction_finder import __all__ as _library_names

__all__ = [*_library_names]
