"""Find BigGAN-deep weights: a local path, then the cache, then a download (atomic).

Never calls `BigGAN.from_pretrained`: it sends a HEAD request before it looks at its cache (so it
cannot work offline) and loads with strict=False.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from direction_finder.errors import UsageError, WeightsError

MODEL_NAMES: tuple[str, ...] = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"
FINGERPRINT_BYTES = 2**20  # read from each end of the weights file for its fingerprint
RECORD_NAME = "download.json"  # size of each file as it arrived, written after a complete download


def mirrors(name: str, filename: str) -> list[str]:
    """Where the published files live, tried in order: the Hugging Face hub, then the legacy
    S3 bucket that pytorch-pretrained-biggan 0.1.1 hard-codes."""
    legacy = "biggan-deep-{r}-" + filename
    return [
        f"https://huggingface.co/huggingface/{name}/resolve/main/{filename}",
        f"https://s3.amazonaws.com/models.huggingface.co/biggan/{legacy.format(r=name.rsplit('-', 1)[1])}",
    ]


ProgressCallback = Callable[[str, int, "int | None"], None]  # (filename, bytes so far, total)
Fetch = Callable[[str, Path, "ProgressCallback | None"], None]


@dataclass(frozen=True)
class WeightsFiles:
    config: Path
    weights: Path
    source: str  # "path", "cache" or "download"

    @property
    def folder(self) -> Path:
        return self.weights.parent

    def fingerprint(self) -> str:
        """Which weights these are, cheaply: sha256 of config.json, the weights file's size, and
        its first and last MiB. Recorded at learn time, so that a later render, compare or
        resume notices another model behind the same folder name (reading 2 MiB, not 1 GB)."""
        digest = hashlib.sha256(self.config.read_bytes())
        size = self.weights.stat().st_size
        digest.update(str(size).encode())
        with open(self.weights, "rb") as f:
            digest.update(f.read(FINGERPRINT_BYTES))
            f.seek(max(0, size - FINGERPRINT_BYTES))
            digest.update(f.read(FINGERPRINT_BYTES))
        return digest.hexdigest()[:16]


def check_model_name(name: str) -> str:
    if name not in MODEL_NAMES:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return name


def cache_root() -> Path:
    """$HPDIRS_CACHE, else $XDG_CACHE_HOME/hpdirs, else ~/.cache/hpdirs."""
    if os.environ.get("HPDIRS_CACHE"):
        return Path(os.environ["HPDIRS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hpdirs"


def offline_from_env() -> bool:
    return os.environ.get("HPDIRS_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def local_weights(path: str | os.PathLike) -> WeightsFiles:
    """A folder with config.json + pytorch_model.bin, or either of those two files named directly."""
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"`weights` {p} does not exist; give a folder holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    folder = p if p.is_dir() else p.parent
    if p.is_file() and p.name not in (CONFIG_NAME, WEIGHTS_NAME):
        raise WeightsError(f"`weights` {p} is neither {CONFIG_NAME} nor {WEIGHTS_NAME}; give the folder holding both")
    for needed in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / needed).is_file():
            raise WeightsError(f"{folder} has no {needed}; a weights folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    return WeightsFiles(folder / CONFIG_NAME, folder / WEIGHTS_NAME, "path")


def _cached(folder: Path) -> WeightsFiles | None:
    config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not (config.is_file() and weights.is_file()):
        return None
    record = folder / RECORD_NAME
    if record.is_file():  # written by our downloader: sizes must still match
        try:
            sizes = json.loads(record.read_text())
        except (OSError, ValueError):
            sizes = {}
        for f in (config, weights):
            if f.name in sizes and f.stat().st_size != sizes[f.name]:
                raise WeightsError(
                    f"cached {f} is {f.stat().st_size} bytes but {sizes[f.name]} were downloaded "
                    f"(damaged); delete {folder} and run again, or pass `weights`"
                )
    return WeightsFiles(config, weights, "cache")


def http_fetch(url: str, dest: Path, progress: ProgressCallback | None = None) -> None:
    """Stream url into dest; raise OSError unless every announced byte arrived."""
    request = urllib.request.Request(url, headers={"User-Agent": "hpdirs"})
    with urllib.request.urlopen(request, timeout=60) as response, open(dest, "wb") as out:
        total = response.headers.get("Content-Length")
        total = int(total) if total is not None else None
        done = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(dest.name.split(".partial")[0], done, total)
        out.flush()
        os.fsync(out.fileno())
    if total is not None and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")


def download(
    name: str,
    folder: Path,
    *,
    fetch: Fetch | None = None,
    progress: ProgressCallback | None = None,
) -> WeightsFiles:
    """Download the published config + weights of `name` into folder, each atomically."""
    fetch = fetch or http_fetch
    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        final = folder / filename
        partial = folder / f"{filename}.partial-{os.getpid()}"
        errors = []
        for url in mirrors(name, filename):
            try:
                fetch(url, partial, progress)
                os.replace(partial, final)  # only a complete file gets the final name
                break
            except (OSError, urllib.error.URLError, ValueError) as exc:
                errors.append(f"{url} ({getattr(exc, 'reason', None) or exc})")
            finally:
                partial.unlink(missing_ok=True)
        else:
            raise WeightsError(
                f"could not download {filename} for {name}: tried {'; '.join(errors)}. Put "
                f"{CONFIG_NAME} and {WEIGHTS_NAME} in {folder} by hand, or pass `weights` FOLDER"
            )
        sizes[filename] = final.stat().st_size
    tmp = folder / f"{RECORD_NAME}.tmp"
    tmp.write_text(json.dumps(sizes))
    os.replace(tmp, folder / RECORD_NAME)
    return WeightsFiles(folder / CONFIG_NAME, folder / WEIGHTS_NAME, "download")


def resolve_weights(
    name: str,
    weights: str | os.PathLike | None = None,
    *,
    offline: bool | None = None,
    fetch: Fetch | None = None,
    progress: ProgressCallback | None = None,
) -> WeightsFiles:
    """`weights` if given, else the cache, else a download (unless offline)."""
    if weights is not None:
        return local_weights(weights)
    check_model_name(name)
    folder = cache_root() / name
    cached = _cached(folder)
    if cached is not None:
        return cached
    if offline if offline is not None else offline_from_env():
        raise WeightsError(
            f"offline and {name} is not in the cache ({folder}); put {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} there, pass `weights` FOLDER, or run online once"
        )
    return download(name, folder, fetch=fetch, progress=progress)
