"""render's index.html: every rendered file, with model, class, eta range and direction names."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from direction_finder.files import write_text_atomic
from direction_finder.outputs.formats import ANIMATION, FORMATS, chosen


def write_gallery(out: Path, manifest: dict[str, Any]) -> None:
    """index.html: every rendered file, with model, class, eta range and direction index."""
    e = html.escape
    title = f"{manifest.get('model', '')} · {manifest.get('class_name', '')}".strip(" ·")
    facts = (
        f"model {e(str(manifest.get('model', '?')))} · class {e(str(manifest.get('class_name', '?')))} "
        f"({e(str(manifest.get('class_index', '?')))}) · truncation {e(str(manifest.get('truncation', '?')))} · "
        f"η from −{manifest['eta']} to +{manifest['eta']} · {manifest['frames']} frames · "
        f"{manifest['samples']} samples (seed {manifest['seed']}) · "
        f"{'aligned' if manifest['align'] else 'not aligned'}"
    )
    cards = []
    for row in manifest["rows"]:
        label = f"{'direction' if row['kind'] == 'direction' else 'axis z'} {row['index']}"
        if row.get("label"):
            label += f" ({row['label']})"
        if row.get("layers"):  # the latent layers the edit reached (a label's, or --layers)
            label += f" · layers {row['layers'][0]}-{row['layers'][1]}"
        shown = [fmt for fmt in chosen(list(row["files"]), ANIMATION) if fmt.embed is not None]
        media = shown[0].embed(row["files"][shown[0].name], label) if shown and shown[0].embed else ""
        links = " ".join(f'<a href="{e(f)}">{e(k)}</a>' for k, f in row["files"].items())
        cards.append(f"<figure>{media}<figcaption>{e(label)} · {links}</figcaption></figure>")
    overviews = [fmt for fmt in FORMATS.values() if fmt.kind == ANIMATION and fmt.manifest_key in manifest]
    parts = []
    if overviews and overviews[0].embed is not None:  # the first the table names: a GIF before an MP4
        parts.append(f"<h2>Overview</h2>{overviews[0].embed(manifest[overviews[0].manifest_key], 'overview')}")
    if "sheet" in manifest:
        etas = ", ".join(f"{v:+.2f}" for v in manifest["sheet_etas"])
        parts.append(
            f"<h2>Sheet</h2><p>rows: {e(', '.join(manifest['sheet_rows']))}; columns: η = {e(etas)}</p>"
            f'<img src="{e(manifest["sheet"])}" alt="sheet">'
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hpdirs · {e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; }} figcaption {{ font-size: 0.85rem; }}
img, video {{ max-width: 100%; image-rendering: pixelated; }}
</style></head><body>
<h1>hpdirs · {e(title)}</h1>
<p>{facts}</p>
<h2>Directions</h2>
<div class="grid">
{chr(10).join(cards)}
</div>
{chr(10).join(parts)}
</body></html>
"""
    write_text_atomic(out / "index.html", page)
