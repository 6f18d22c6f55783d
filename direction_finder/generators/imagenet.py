"""The 1000 ImageNet-1k classes (shipped as data, no nltk) and a forgiving name resolver."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from direction_finder.errors import UsageError

NUM_CLASSES = 1000
_WNID = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wordnet_id: str
    names: tuple[str, ...]  # the first is the class's usual name

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def slug(self) -> str:
        """A file-system friendly name: `golden_retriever`."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


def normalise(text: str) -> str:
    """`Golden_Retriever`, `golden-retriever` and ` golden  retriever` all become `golden retriever`."""
    return " ".join(re.sub(r"[_\-]+", " ", text.strip().lower()).split())


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """All 1000 classes in index order, read from the package's imagenet_classes.tsv."""
    text = resources.files(__package__).joinpath("imagenet_classes.tsv").read_text("utf-8")
    classes = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        index, wnid, names = line.split("\t")
        classes.append(ImageNetClass(int(index), wnid, tuple(n.strip() for n in names.split(","))))
    assert [c.index for c in classes] == list(range(NUM_CLASSES)), "corrupt class table"
    return tuple(classes)


def _describe(c: ImageNetClass) -> str:
    return f"{c.index} {c.name} ({c.wordnet_id})"


def resolve_class(query: str | int) -> ImageNetClass:
    """Resolve an index (`207`), WordNet id (`n02099601`) or name (`golden_retriever`).

    Names match case-, space- and underscore-insensitively, first against each class's usual
    name, then against all its synonyms. Unknown or ambiguous names raise UsageError listing the
    closest candidates.
    """
    classes = imagenet_classes()
    text = str(query).strip()
    if re.fullmatch(r"\d+", text):
        index = int(text)
        if index >= NUM_CLASSES:
            raise UsageError(f"class index {index} is out of range; ImageNet classes are 0-{NUM_CLASSES - 1}")
        return classes[index]
    if _WNID.match(text.lower()):
        for c in classes:
            if c.wordnet_id == text.lower():
                return c
        raise UsageError(f"WordNet id {text} is not one of the 1000 ImageNet classes; see `hpdirs classes`")
    key = normalise(text)
    if not key:
        raise UsageError("the class is empty; give a name, index or WordNet id (see `hpdirs classes`)")
    for matches in (
        [c for c in classes if normalise(c.name) == key],
        [c for c in classes if any(normalise(n) == key for n in c.names)],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            options = "; ".join(_describe(c) for c in matches)
            raise UsageError(f"class {text!r} is ambiguous: {options}; pass the index or WordNet id")
    raise UsageError(f"unknown class {text!r}; {_suggest(key)}")


def closest_classes(query: str) -> list[ImageNetClass]:
    """Up to five classes whose names are closest to the query (none when nothing is close)."""
    by_name: dict[str, ImageNetClass] = {}
    for c in imagenet_classes():
        for n in c.names:
            by_name.setdefault(normalise(n), c)
    seen: list[ImageNetClass] = []
    for n in difflib.get_close_matches(normalise(query), list(by_name), n=5, cutoff=0.6):
        if by_name[n] not in seen:
            seen.append(by_name[n])
    return seen


def _suggest(key: str) -> str:
    seen = closest_classes(key)
    if not seen:
        return "search the list with `hpdirs classes QUERY`"
    return "closest: " + "; ".join(_describe(c) for c in seen) + " (search with `hpdirs classes QUERY`)"


def search_classes(query: str = "") -> list[ImageNetClass]:
    """Classes whose index, WordNet id or any name contains the query (all when it is empty)."""
    key = normalise(query)
    if not key:
        return list(imagenet_classes())
    return [
        c
        for c in imagenet_classes()
        if key == str(c.index) or key in c.wordnet_id or any(key in normalise(n) for n in c.names)
    ]
