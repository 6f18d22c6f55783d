"""Find BigGAN-deep weights: a local path, then the cache, then a download.

Never calls `BigGAN.from_pretrained`: it sends a HEAD request before it looks at its cache (so it
cannot work offline) and loads with strict=False. A download gets its final name only after what
arrived was read back as a whole config and a whole state dict of that config's keys, so an HTML
error page, a cut body or a wrong length never stands in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from direction_finder.errors import UsageError, WeightsError
from direction_finder.files import read_json, write_text_atomic
from direction_finder.generators.catalogue import MODEL_NAMES
from direction_finder.generators.published import build_biggan, load_exactly, read_config, read_state_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"
FINGERPRINT_BYTES = 2**20  # read from each end of the weights file for its fingerprint
RECORD_NAME = "download.json"  # size of each file as it arrived, written after a complete download


# The S3 bucket pytorch-pretrained-biggan 0.1.1 hard-codes (and many projects still use), for all
# three models; its files are named biggan-deep-<resolution>-<file>.
S3 = "https://s3.amazonaws.com/models.huggingface.co/biggan/{model}-{file}"
# Hugging Face hub repositories that public code loads these files from (Gradio's own tests load
# osanseviero/BigGAN-deep-128); no public reference was found for the other resolutions.
HUB = {"biggan-deep-128": "https://huggingface.co/osanseviero/BigGAN-deep-128/resolve/main/{file}"}
MIRRORS_ENV = "HPDIRS_WEIGHTS_URL"  # your own mirrors, tried first: templates with {model}, {file}
RETRIES = 3  # attempts per mirror when a connection drops half way (each resumes where it stopped)
READ_TIMEOUT_S = 60.0  # one read that brings nothing this long ends the attempt
SLOW_GRACE_S = 60.0  # after this long, a download slower on average than MIN_RATE is given up
MIN_RATE = 16 * 1024  # bytes/s: a mirror that trickles is not waited on for hours


def _fill(template: str, name: str, filename: str) -> str:
    """A mirror template with {model} and {file} filled in; any other field, a conversion or a
    format spec, or an unbalanced brace is a UsageError naming the template."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        fields, problem = [], str(exc)
    else:
        wrong = [f for f, spec, conv in fields if f not in ("model", "file") or spec or conv]
        problem = f"unknown field {{{wrong[0]}}}" if wrong else ""
    if problem:
        raise UsageError(
            f"${MIRRORS_ENV} template {template!r} is malformed ({problem}); use {{model}} and {{file}} only, "
            "e.g. https://example.org/biggan/{model}-{file}"
        )
    return template.replace("{model}", name).replace("{file}", filename).replace("{{", "{").replace("}}", "}")


def mirrors(name: str, filename: str) -> list[str]:
    """Where the published files live, tried in order: $HPDIRS_WEIGHTS_URL (one or more URL
    templates separated by spaces, with {model} and {file}; a template without {file} gets
    /<file> appended), then the Hugging Face hub where a public repository has the model, then
    the S3 bucket pytorch-pretrained-biggan hard-codes."""
    own = []
    for template in os.environ.get(MIRRORS_ENV, "").split():
        template = template if "{file}" in template else template.rstrip("/") + "/{file}"
        own.append(_fill(template, name, filename))
    hub = [HUB[name].format(file=filename)] if name in HUB else []
    return own + hub + [S3.format(model=name, file=filename)]


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
    """HPDIRS_OFFLINE=1, or the Hugging Face hub's own HF_HUB_OFFLINE=1."""
    yes = ("1", "true", "yes", "on")
    return any(os.environ.get(v, "").strip().lower() in yes for v in ("HPDIRS_OFFLINE", "HF_HUB_OFFLINE"))


def _resolution_matches(config: Path, name: str) -> bool:
    """A found config.json is of the model asked for (its output_dim), else it is not used."""
    try:
        return int(read_json(config, "config.json").get("output_dim", -1)) == int(name.rsplit("-", 1)[1])
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def biggan_package_cache(name: str) -> WeightsFiles | None:
    """The files pytorch-pretrained-biggan downloaded itself, used in place:
    $PYTORCH_PRETRAINED_BIGGAN_CACHE (default ~/.pytorch_pretrained_biggan) holds each file under
    a hash of its URL, beside a .json that names the URL (its S3 URLs)."""
    root = Path(os.environ.get("PYTORCH_PRETRAINED_BIGGAN_CACHE") or Path.home() / ".pytorch_pretrained_biggan")
    if not root.is_dir():
        return None
    wanted = {S3.format(model=name, file=f): f for f in (CONFIG_NAME, WEIGHTS_NAME)}
    found: dict[str, Path] = {}
    for sidecar in sorted(root.glob("*.json")):
        try:
            url = read_json(sidecar, "download record").get("url")
        except (OSError, ValueError, AttributeError):
            continue
        data = sidecar.with_name(sidecar.name[: -len(".json")])
        if url in wanted and data.is_file():
            found[wanted[url]] = data
    if len(found) < 2 or not _resolution_matches(found[CONFIG_NAME], name):
        return None
    return WeightsFiles(found[CONFIG_NAME], found[WEIGHTS_NAME], "pytorch-pretrained-biggan cache")


def hub_cache(name: str) -> WeightsFiles | None:
    """A Hugging Face hub snapshot of the model's repository, used in place:
    $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    repository = {"biggan-deep-128": "osanseviero/BigGAN-deep-128"}.get(name)
    if repository is None:
        return None
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    root = Path(os.environ.get("HF_HUB_CACHE") or home / "hub")
    snapshots = root / f"models--{repository.replace('/', '--')}" / "snapshots"
    for snapshot in sorted(snapshots.glob("*"), key=lambda p: p.stat().st_mtime, reverse=True):
        config, weights = snapshot / CONFIG_NAME, snapshot / WEIGHTS_NAME
        if config.is_file() and weights.is_file() and _resolution_matches(config, name):
            return WeightsFiles(config, weights, "hugging face cache")
    return None


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
    try:
        read_config(config)
    except WeightsError:  # not ours to keep: an entry left by an older version or by hand
        discard_cached(folder)
        raise WeightsError(f"the cached {config} was damaged and has been removed; run again to download it") from None
    record = folder / RECORD_NAME
    if record.is_file():  # written by our downloader: sizes must still match
        try:
            sizes = read_json(record, RECORD_NAME)
        except (OSError, ValueError):
            sizes = {}
        for f in (config, weights):
            if isinstance(sizes, dict) and isinstance(sizes.get(f.name), int) and f.stat().st_size != sizes[f.name]:
                raise WeightsError(
                    f"cached {f} is {f.stat().st_size} bytes but {sizes[f.name]} were downloaded "
                    f"(damaged); delete {folder} and run again, or pass `weights`"
                )
    return WeightsFiles(config, weights, "cache")


def discard_cached(folder: Path) -> None:
    """Remove a damaged cache entry (only the files a download writes), so that it cannot stand."""
    for name in (CONFIG_NAME, WEIGHTS_NAME, RECORD_NAME):
        (folder / name).unlink(missing_ok=True)


class SizeMismatch(OSError):
    """The server sent another number of bytes than it announced, or so slowly that it is given
    up: the file is not kept, and the next mirror is tried."""


def http_fetch(url: str, dest: Path, progress: ProgressCallback | None = None) -> None:
    """Stream url into dest. Bytes already in dest (an interrupted download) are resumed with an
    HTTP Range request; a server that answers 200 instead of 206 sends the whole file again,
    which replaces them. Raises OSError unless every announced byte arrived."""
    have = dest.stat().st_size if dest.exists() else 0
    headers = {"User-Agent": "hpdirs"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length is not None else None
        ranged = response.headers.get("Content-Range", "")  # bytes START-END/TOTAL
        if resumed and not ranged.startswith(f"bytes {have}-"):
            raise SizeMismatch(f"the server resumed at another byte than {have} ({ranged!r})")
        done = have if resumed else 0
        with open(dest, "ab" if resumed else "wb") as out:
            while chunk := response.read1(1 << 20):  # what one read brings: a trickle returns to this loop
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(dest.name.split(".partial")[0], done, total)
                elapsed = time.monotonic() - started
                if elapsed > SLOW_GRACE_S and (done - (have if resumed else 0)) < MIN_RATE * elapsed:
                    raise SizeMismatch(f"{done} bytes in {elapsed:.0f} s, slower than {MIN_RATE // 1024} KiB/s")
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done < total:
        raise OSError(f"connection closed after {done} of {total} bytes")
    if total is not None and done > total:
        raise SizeMismatch(f"received {done} bytes, more than the {total} announced")


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
        partial = folder / f"{filename}.partial"  # kept when a connection drops: the next try resumes it
        errors: list[str] = []
        for url in mirrors(name, filename):
            if _fetch_resuming(fetch, url, partial, progress, errors):
                problem = _arrived_whole(filename, partial, folder / CONFIG_NAME)
                if problem is None:
                    os.replace(partial, final)  # only a file read back whole gets the final name
                    break
                partial.unlink(missing_ok=True)
                errors.append(f"{url} ({problem})")
        else:
            raise WeightsError(
                f"could not download {filename} for {name}: tried {'; '.join(errors)}. Put "
                f"{CONFIG_NAME} and {WEIGHTS_NAME} in {folder} by hand, or pass `weights` FOLDER"
            )
        sizes[filename] = final.stat().st_size
    write_text_atomic(folder / RECORD_NAME, json.dumps(sizes))
    return WeightsFiles(folder / CONFIG_NAME, folder / WEIGHTS_NAME, "download")


def _arrived_whole(filename: str, partial: Path, config: Path) -> str | None:
    """Why what arrived in `partial` is not the published file (None: it is): config.json must
    parse as a BigGAN-deep config; the weights must load, strictly, into the architecture that
    config describes."""
    try:
        if filename == CONFIG_NAME:
            read_config(partial)
        else:
            load_exactly(build_biggan(read_config(config), str(config)), read_state_dict(partial), partial)
    except WeightsError as exc:
        return " ".join(str(exc).replace(str(partial), "what arrived").split())[:200]
    return None


def _fetch_resuming(fetch: Fetch, url: str, partial: Path, progress: ProgressCallback | None,
                    errors: list[str]) -> bool:  # fmt: skip
    """Fetch url into partial, resuming up to RETRIES times after a dropped connection; on
    failure, the reason is added to errors and False returned."""
    for attempt in range(RETRIES):
        before = partial.stat().st_size if partial.exists() else 0
        try:
            fetch(url, partial, progress)
            return True
        except SizeMismatch as exc:  # not the file announced: start over from the next mirror
            partial.unlink(missing_ok=True)
            errors.append(f"{url} ({exc})")
            return False
        except urllib.error.HTTPError as exc:  # 404, 403, ...: this mirror does not have it
            if exc.code == 416:  # the partial file is already whole or longer than the file
                partial.unlink(missing_ok=True)
            errors.append(f"{url} ({exc.code} {exc.reason})")
            return False
        except (OSError, urllib.error.URLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            now = partial.stat().st_size if partial.exists() else 0
            if attempt and now == before:  # a retry that brought nothing: the size announced is wrong
                partial.unlink(missing_ok=True)
                errors.append(f"{url} ({reason}; no more bytes on a retry: not the file announced)")
                return False
            if now == 0:  # nothing to resume: another mirror
                errors.append(f"{url} ({reason})")
                return False
            last = f"{url} ({reason})"
    errors.append(last)
    return False


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
    cached = _cached(folder) or biggan_package_cache(name) or hub_cache(name)  # what the user already has
    if cached is not None:
        return cached
    if offline if offline is not None else offline_from_env():
        raise WeightsError(
            f"offline and {name} is not in the cache ({folder}); put {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} there, pass `weights` FOLDER, or run online once"
        )
    return download(name, folder, fetch=fetch, progress=progress)
