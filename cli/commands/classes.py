"""`hpdirs classes`: list or search the 1000 ImageNet classes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from direction_finder.validation import counted
from hpdirs_cli.console import console, emit_json, fail
from hpdirs_cli.options import Json

QUERY_HELP = "Part of a name, an index or a WordNet id."
Query = Annotated[str, typer.Argument(help=QUERY_HELP, metavar="QUERY", show_default="all 1000")]


def classes(query: Query = "", json_out: Json = False) -> None:
    """List or search the 1000 ImageNet classes.

    The classes BigGAN-deep was trained on; --class takes a name, an index or a WordNet id.

    $ hpdirs classes retriever
    """
    from direction_finder.generators.imagenet import search_classes

    found = search_classes(query)
    if not found:
        raise fail(f"no ImageNet class matches {query!r}; try a shorter query or `hpdirs classes`")
    if json_out:
        emit_json({"classes": [{"index": c.index, "wordnet_id": c.wordnet_id, "names": list(c.names)} for c in found]})
        return
    table = Table("index", "WordNet id", "names", title=counted(len(found), "ImageNet class", "ImageNet classes"))
    for c in found:
        table.add_row(str(c.index), c.wordnet_id, ", ".join(c.names))
    console.print(table)
