"""How long the explorer takes from a slider change to the new image, measured through its real
HTTP server on this machine: the generator's forward of that batch, and what comes on top of it
(the latents, PNG encoding, HTTP). A position asked for again comes from the cache."""

from __future__ import annotations

import statistics
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from direction_finder.artifacts.directions import Directions
from direction_finder.artifacts.runs import OpenedDirections
from direction_finder.explore.server import make_server
from direction_finder.explore.session import Explorer, View, png_of
from direction_finder.method.orthonormal import gram_schmidt

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def explore_latency(generator: Generator, samples: Sequence[int] = (1, 4), steps: int = 5) -> dict[str, Any]:
    """Per number of samples, medians over `steps` slider positions never shown before (ms):
    the whole request; the bare forward of such latents on the explorer's own render thread; the
    overhead, measured by its parts (the latents z + w Q and the PNG of the images, timed on the
    render thread, plus the HTTP round trip of a cached answer), since the difference of two
    forwards' worth of time drifts by more than the overhead on a busy CPU; and a repeated
    position (served from the cache)."""
    z_dim = int(generator.z_dim)
    matrix = gram_schmidt(torch.randn(8, z_dim, generator=torch.Generator().manual_seed(5)))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        explorer = Explorer(
            OpenedDirections(Path(tmp) / "directions.safetensors", Directions(matrix), generator, False)
        )
        server = make_server(explorer).start()

        def fetch(query: str) -> float:
            start = time.perf_counter()
            with urllib.request.urlopen(f"{server.url}api/image?{query}&token={server.token}", timeout=600) as response:
                response.read()
            return (time.perf_counter() - start) * 1000

        def forward(latents: Tensor) -> float:
            _sync(generator.device)
            start = time.perf_counter()
            with torch.no_grad():
                generator(latents)
            _sync(generator.device)
            return (time.perf_counter() - start) * 1000

        try:
            for count in samples:
                z = generator.sample_z(count, torch.Generator().manual_seed(0))
                fetch(f"samples={count}&c=0:0.05")  # warm-up
                fresh, forwards, parts = [], [], []
                for i in range(steps):
                    fresh.append(fetch(f"samples={count}&c=0:{0.1 * (i + 1):.2f}"))
                    latents = z + 0.1 * (i + 1) * matrix[0].to(z.device)
                    forwards.append(explorer.worker.submit(forward, latents).result())
                    view = View.of("learned", {0: 0.1 * (i + 1)}, samples=count)
                    parts.append(explorer.worker.submit(_latents_and_png, explorer, view).result())
                cached = statistics.median(fetch(f"samples={count}&c=0:0.10") for _ in range(steps))
                results[str(count)] = {
                    "new_position_ms": statistics.median(fresh),
                    "forward_ms": statistics.median(forwards),
                    "overhead_ms": statistics.median(parts) + cached,
                    "cached_ms": cached,
                }
        finally:
            server.stop()
    return results


def _latents_and_png(explorer: Explorer, view: View) -> float:
    """Milliseconds of what a new position costs besides the forward: its latents and its PNG."""
    generator = explorer.generator_for(view)
    with torch.no_grad():
        images = generator(explorer.edited(view).to(generator.device)).float()  # not timed
    start = time.perf_counter()
    explorer.edited(view)
    png_of(images)
    return (time.perf_counter() - start) * 1000
