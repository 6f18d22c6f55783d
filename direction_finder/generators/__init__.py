"""Generators hpdirs can learn directions for (anything satisfying the Generator protocol)."""

from direction_finder.generators.base import Generator, resolve_device
from direction_finder.generators.biggan import BigGANGenerator, load_biggan
from direction_finder.generators.imagenet import ImageNetClass, resolve_class, search_classes

__all__ = [
    "BigGANGenerator", "Generator", "ImageNetClass", "load_biggan", "resolve_class", "resolve_device",
    "search_classes",
]
