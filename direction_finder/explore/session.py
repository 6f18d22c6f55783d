"""The explorer's state, without HTTP: direction sets, base latents, the current generator, and
images of any combination of coefficients, rendered on one thread with an LRU cache.

A view is everything that decides an image: the direction set, the coefficients w (index ->
value), the base latents (a seed and a count, or the user's uploaded latents), and, for a
class-conditional generator, the class and truncation. The latents shown are z + w Q.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from direction_finder.artifacts.labels import label_ranges, parse_layer_range, write_label
from direction_finder.artifacts.latents import read_latents
from direction_finder.artifacts.runs import OpenedDirections
from direction_finder.config import FLOAT_LIMITS, LIMITS
from direction_finder.errors import UsageError
from direction_finder.generators.base import ClassConditional, LayerwiseLatent, describe, sefa_of
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.method.sweeps import layer_edit, move
from direction_finder.outputs.media import grid_frame, ping_pong, to_uint8, write_gif
from direction_finder.validation import integer, positive, within

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

# Jobs of one kind that may wait for the render thread at once; one more is refused (Busy), so a
# flood of requests queues no more work than a few of them can take.
MAX_PENDING = {"image": 8, "latents": 8, "sweep": 2}
MAX_SAMPLES = 4  # images side by side
MAX_LATENTS = 1024  # rows of an uploaded .npy of latents
ACTIVENESS_SAMPLES = 2  # latents whose images order the sliders by activeness
SWEEP_FRAMES = 16


class Busy(Exception):
    """Too many jobs of one kind wait for the render thread: the request is refused, not queued."""


class ClientGone(Exception):
    """The client that asked for the work closed its connection: the work is dropped."""


Gone = Callable[[], bool]  # whether the client asking has gone away


def _never() -> bool:
    return False


@dataclass(frozen=True)
class View:
    """What decides one picture. Coefficients are stored sorted, zeros dropped, so equal views
    are equal keys of the cache."""

    set: str = "learned"
    coefficients: tuple[tuple[int, float], ...] = ()
    seed: int = 0
    samples: int = 1
    uploaded: bool = False  # the user's latents instead of seeded ones
    class_: int | None = None  # None: the one the directions were learned for
    truncation: float | None = None
    layers: tuple[int, int] | None = None  # (first, last) latent layers the coefficients reach; None: all

    @staticmethod
    def of(set: str = "learned", coefficients: Mapping[int, float] | None = None, **fields: Any) -> View:
        pairs = tuple(sorted((int(i), float(v)) for i, v in (coefficients or {}).items() if float(v) != 0.0))
        return View(set, pairs, **fields)


@dataclass
class Explorer:
    """One explored directions file: its sets, its generator(s), its cache and its labels."""

    opened: OpenedDirections
    choice: GeneratorChoice = field(default_factory=GeneratorChoice)
    eta: float = 5.0
    cache_size: int = 256

    def __post_init__(self) -> None:
        positive("eta", self.eta, FLOAT_LIMITS["eta"])
        d = self.opened.directions  # the layers labels give directions: checked once, as render does
        self.label_ranges = label_ranges(self.opened.generator, d.label_layers, d.labels)
        # Every generator call runs on this one long-lived thread, one at a time (the generator is
        # not thread-safe). A fresh thread per request would also pay for its own thread pool in
        # torch: about 80 ms a forward for biggan-deep-128 on a 2-core CPU (docs/performance.md).
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpdirs-render")
        self.closing = threading.Event()  # set by close(): long jobs stop between forwards
        self.lock = threading.Lock()  # guards the cache, the uploaded latents and the request numbers
        self.cache: OrderedDict[View, bytes] = OrderedDict()
        self.generators: OrderedDict[tuple[int | None, float | None], Any] = OrderedDict()
        self.generators[(None, None)] = self.opened.generator
        self.uploaded: Tensor | None = None  # (n, z_dim)
        self.activeness: list[float] | None = None  # per learned direction, once measured
        self.latest: dict[str, int] = {}  # client -> newest request number: older ones are dropped
        self.pending: dict[str, int] = dict.fromkeys(MAX_PENDING, 0)  # jobs of each kind not yet done
        n, z_dim = self.opened.directions.num_directions, self.opened.directions.z_dim
        self.sets: dict[str, Tensor] = {"learned": self.opened.directions.matrix.float(), "axes": torch.eye(n, z_dim)}
        sefa = sefa_of(self.opened.generator, n)  # every layer z enters, where there are several
        if sefa is not None:
            self.sets["sefa"] = sefa.float()

    # --- what the page needs to draw itself ---
    def metadata(self) -> dict[str, Any]:
        d, generator = self.opened.directions, self.opened.generator
        about = describe(generator)
        active = self.activeness
        order = sorted(range(d.num_directions), key=lambda i: -active[i]) if active else None
        return {
            "file": str(self.opened.path), "model": about.get("model"), "class_name": about.get("class_name"),
            "class_index": about.get("class_index"), "truncation": about.get("truncation"),
            "num_directions": d.num_directions, "z_dim": d.z_dim, "eta": self.eta, "names": d.names,
            "labels": {str(i): v for i, v in d.labels.items()}, "sets": list(self.sets),
            "label_layers": {str(i): list(pair) for i, pair in d.label_layers.items()},
            "class_conditional": isinstance(generator, ClassConditional), "max_samples": MAX_SAMPLES,
            "latent_layers": generator.latent_layers if isinstance(generator, LayerwiseLatent) else 0,
            "uploaded_latents": 0 if self.uploaded is None else int(self.uploaded.shape[0]),
            "order": order, "activeness": self.activeness,
        }  # fmt: skip

    # --- views, checked ---
    def check(self, view: View) -> View:
        """A view with every part in range (a UsageError naming the part otherwise)."""
        if view.set not in self.sets:
            raise UsageError(f"`set` {view.set!r} is not one of {', '.join(self.sets)}")
        n = self.opened.directions.num_directions
        for index, value in view.coefficients:
            integer("direction", index, 0, n - 1)
            within("coefficient", value, -FLOAT_LIMITS["eta"], FLOAT_LIMITS["eta"])
        integer("seed", view.seed, *LIMITS["seed"])
        integer("samples", view.samples, 1, MAX_SAMPLES)
        if view.uploaded and self.uploaded is None:
            raise UsageError("no latents were uploaded; upload a .npy first or use a seed")
        if view.class_ is not None or view.truncation is not None:
            if not isinstance(self.opened.generator, ClassConditional):
                raise UsageError("this generator has no classes: `class_` and `truncation` do not apply")
            if view.truncation is not None:
                within("truncation", view.truncation, 0.02, 1.0)
        if view.layers is not None:
            if not isinstance(self.opened.generator, LayerwiseLatent):
                raise UsageError("this generator has no layer-wise latents: `layers` does not apply")
            first, last = view.layers  # read as label and render read a range, with their words
            parse_layer_range(f"{first}-{last}", self.opened.generator.latent_layers)
        return view

    def generator_for(self, view: View) -> Generator:
        """The generator of a view's class and truncation: loaded once, a few kept."""
        key = (view.class_, view.truncation)
        if key not in self.generators:
            if view.truncation is not None:  # other BatchNorm statistics: load again, as the file records
                meta = dict(self.opened.directions.metadata)
                choice = dataclasses.replace(
                    self.choice, class_=view.class_, truncation=view.truncation, device=self.opened.generator.device
                )
                generator = choice.for_metadata(meta, source=str(self.opened.path))
            else:
                # the opened generator is kept under (None, None); check_view refused a class elsewhere
                assert view.class_ is not None and isinstance(self.opened.generator, ClassConditional)
                generator = self.opened.generator.with_class(view.class_)
            self.generators[key] = generator
            while len(self.generators) > 4:
                self.generators.popitem(last=False)
        self.generators.move_to_end(key)
        return self.generators[key]

    def latents(self, view: View) -> Tensor:
        """The base latents (samples, z_dim) of a view, before any direction is added."""
        if view.uploaded:
            assert self.uploaded is not None
            return self.uploaded[: view.samples]
        generator = self.generator_for(view)
        return generator.sample_z(view.samples, torch.Generator().manual_seed(view.seed)).cpu()

    def edited(self, view: View) -> Tensor:
        """z + w Q for the view: (samples, z_dim); with `layers`, per-layer latents
        (samples, latent_layers, z_dim), z + w Q on those layers and z on the others. Without
        `layers`, a learned direction a label gives layers (`hpdirs label ... --layers 0-3`) moves
        those layers only, as render applies it: a named direction looks the same everywhere."""
        base = self.latents(view)
        if view.layers is None:
            own = self._label_layers(view)
            return self._with_coefficients(base, view) if not own else self._per_direction(base, view, own)
        return self._per_layer(base, self._with_coefficients(base, view), view)

    def _label_layers(self, view: View) -> dict[int, range]:
        """The layers labels give the view's moved learned directions (none on other sets)."""
        if view.set != "learned":
            return {}
        return {i: self.label_ranges[i] for i, _ in view.coefficients if i in self.label_ranges}

    def _per_direction(self, base: Tensor, view: View, own: dict[int, range]) -> Tensor:
        """Per-layer latents (samples, latent_layers, z_dim): each direction added on its own
        layers (all of them for a direction no label gives layers)."""
        assert isinstance(self.opened.generator, LayerwiseLatent)  # label_ranges gives ranges for these only
        count = int(self.opened.generator.latent_layers)
        zs = base[:, None, :].repeat(1, count, 1)  # (samples, L, z_dim)
        Q = self.sets[view.set]
        for index, value in view.coefficients:
            layers = own.get(index, range(count))
            zs[:, layers.start : layers.stop] = zs[:, layers.start : layers.stop] + value * Q[index].to(zs.dtype)
        return zs

    def _with_coefficients(self, base: Tensor, view: View) -> Tensor:
        z, Q = base, self.sets[view.set]
        for index, value in view.coefficients:
            z = z + value * Q[index].to(z.dtype)
        return z

    def _per_layer(self, base: Tensor, z: Tensor, view: View) -> Tensor:
        assert view.layers is not None
        first, last = view.layers
        assert isinstance(self.opened.generator, LayerwiseLatent)  # check_view refused layers elsewhere
        return layer_edit(base, z, range(first, last + 1), int(self.opened.generator.latent_layers))

    def _forward(self, generator: Generator, latents: Tensor) -> Tensor:
        """Images of plain latents (n, z_dim) or of per-layer ones (n, L, z_dim)."""
        latents = latents.to(generator.device)
        if latents.dim() == 2:
            return generator(latents)
        assert isinstance(generator, LayerwiseLatent)  # per-layer latents come from views with layers only
        return generator.layerwise(latents)

    def _run(self, kind: str, job: Callable[[], Any]) -> Any:
        """`job` on the render thread, when fewer than MAX_PENDING[kind] jobs of its kind wait or
        run; Busy otherwise (at once: nothing is queued)."""
        with self.lock:
            if self.pending[kind] >= MAX_PENDING[kind]:
                raise Busy(f"too many {kind} requests at once; try again in a moment")
            self.pending[kind] += 1
        try:
            return self.worker.submit(job).result()
        finally:
            with self.lock:
                self.pending[kind] -= 1

    # --- pictures ---
    def image(self, view: View, client: str = "", seq: int = 0, gone: Gone = _never) -> bytes | None:
        """The PNG of a view (its samples side by side); None when a newer request of the same
        client arrived while this one waited (the newest position wins), or when the client has
        gone (`gone`), so no forward is spent on a picture nobody will see."""
        view = self.check(view)
        with self.lock:
            if client:
                self.latest[client] = max(self.latest.get(client, seq), seq)
            if view in self.cache:
                self.cache.move_to_end(view)
                return self.cache[view]

        def render() -> bytes | None:  # on the render thread, when its turn comes
            with self.lock:
                if view in self.cache:
                    return self.cache[view]
                if client and seq < self.latest[client]:
                    return None
            if gone():
                return None
            generator = self.generator_for(view)
            with torch.no_grad():
                images = self._forward(generator, self.edited(view)).float()
            png = png_of(images)
            with self.lock:
                self.cache[view] = png
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
            return png

        return self._run("image", render)

    def latent_npy(self, view: View) -> bytes:
        """The latents shown, z + w Q, as a .npy (samples, z_dim) float32."""
        buffer = io.BytesIO()
        view = self.check(view)  # generators are looked up and made on the render thread only
        np.save(buffer, self._run("latents", lambda: self.edited(view)).numpy().astype(np.float32))
        return buffer.getvalue()

    def sweep_gif(self, view: View, direction: int, frames: int = SWEEP_FRAMES, gone: Gone = _never) -> bytes:
        """A looping GIF of one direction swept from -eta to +eta around the current point; a
        client that goes away (`gone`) stops it at the next frame (ClientGone)."""
        view = self.check(view)
        integer("direction", direction, 0, self.opened.directions.num_directions - 1)
        etas = torch.linspace(-self.eta, self.eta, frames)
        vector = self.sets[view.set][direction]

        def frames_of() -> list[np.ndarray]:
            base, generator = self.latents(view), self.generator_for(view)
            z = self._with_coefficients(base, view)
            frames = []
            for e in etas:
                if self.closing.is_set():  # the explorer stops: not 15 more forwards first
                    raise UsageError("the explorer is stopping")
                if gone():
                    raise ClientGone()
                moved = move(z, vector, e, False)
                latents = moved if view.layers is None else self._per_layer(base, moved, view)
                with torch.no_grad():
                    frames.append(grid_frame(to_uint8(self._forward(generator, latents).float())))
            return frames

        pictures = self._run("sweep", frames_of)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sweep.gif"
            write_gif(path, [pictures[i] for i in ping_pong(frames)], 1000.0 / 12)
            return path.read_bytes()

    # --- what the user changes ---
    def upload_latents(self, data: bytes) -> int:
        """Use the latents of a .npy (n, z_dim) or (z_dim,) as the base points; returns n."""
        latents = read_latents(data, self.opened.directions.z_dim, MAX_LATENTS)
        with self.lock:  # the render thread reads it after this: a whole array, never a half
            self.uploaded = latents
            self.cache = OrderedDict((k, v) for k, v in self.cache.items() if not k.uploaded)
        return int(latents.shape[0])

    def label(self, index: int, name: str) -> dict[int, str]:
        """Name a learned direction (labels.json beside the file); returns all its labels."""
        d = self.opened.directions
        labels = write_label(self.opened.path, index, name, d.num_directions)
        d.labels.clear()
        d.labels.update(labels)
        return labels

    def measure_activeness(self, stop: threading.Event | None = None) -> None:
        """Order the learned directions by how much they change the image: the variance of the
        images at -eta, 0 and +eta along each, over ACTIVENESS_SAMPLES seeded latents (pixels
        and samples averaged). One direction at a time takes the render thread, so sliders stay live."""
        generator = self.opened.generator

        def images(latents: Tensor) -> Tensor:
            with torch.no_grad():
                return generator(latents).double()

        try:
            z = self.worker.submit(self.latents, View(samples=ACTIVENESS_SAMPLES)).result().to(generator.device)
            centre = self.worker.submit(images, z).result()
            values = []
            for q in self.sets["learned"]:
                if (stop is not None and stop.is_set()) or self.closing.is_set():
                    return
                q = q.to(z.device)
                sides = self.worker.submit(images, torch.cat([z - self.eta * q, z + self.eta * q])).result()
                stacked = torch.stack([sides[: len(z)], centre, sides[len(z) :]])  # (3, S, ...)
                values.append(float(stacked.var(dim=0, unbiased=False).mean()))
        except (CancelledError, RuntimeError):  # close() cancelled the queue, or it was already shut down
            if self.closing.is_set():
                return
            raise
        self.activeness = values

    def close(self) -> None:
        """Stop the render thread: queued jobs are cancelled, a sweep stops at its next frame, so
        this waits for one forward at most."""
        self.closing.set()
        self.worker.shutdown(wait=True, cancel_futures=True)


def png_of(images: Tensor) -> bytes:
    """Images (n, C, H, W) in [-1, 1] side by side, as PNG bytes (fast compression: it is sent,
    not kept)."""
    buffer = io.BytesIO()
    Image.fromarray(grid_frame(to_uint8(images))).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
