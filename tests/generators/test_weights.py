"""Weights resolution: path -> cache -> download, offline mode, atomic downloads."""

import json
import shutil

import pytest
import torch
from helpers import runner

from direction_finder.errors import WeightsError
from direction_finder.generators import weights as w
from direction_finder.generators.biggan import load_biggan
from hpdirs_cli.main import app


def fetch_from(folder, *, fail_urls=(), cut_after=None, interrupt=False):
    """A stand-in for the network serving files from `folder`, recording every URL asked."""
    asked = []

    def fetch(url, dest, progress=None):
        asked.append(url)
        if any(bad in url for bad in fail_urls):
            raise OSError("HTTP Error 404: Not Found")
        data = (folder / url.rsplit("/", 1)[1].replace("biggan-deep-128-", "")).read_bytes()
        with open(dest, "wb") as out:
            if cut_after is not None and dest.name.startswith("pytorch_model.bin"):
                out.write(data[:cut_after])
                out.flush()
                if interrupt:
                    raise KeyboardInterrupt
                raise OSError(f"connection closed after {cut_after} of {len(data)} bytes")
            out.write(data)
        if progress:
            progress(dest.name, len(data), len(data))

    fetch.asked = asked
    return fetch


def test_offline_with_an_empty_cache_gives_the_clear_message_and_never_fetches(monkeypatch, tmp_path):
    def forbidden(*args, **kwargs):
        pytest.fail("offline mode touched the network")

    with pytest.raises(WeightsError) as info:
        load_biggan("biggan-deep-128", class_=207, offline=True, fetch=forbidden)
    message = str(info.value)
    assert "offline" in message and "biggan-deep-128 is not in the cache" in message and "`weights`" in message
    monkeypatch.setenv("HPDIRS_OFFLINE", "1")
    monkeypatch.setattr(w, "http_fetch", forbidden)
    with pytest.raises(WeightsError, match="offline"):
        load_biggan("biggan-deep-128", class_=207)


def test_offline_from_the_cli_is_one_line_and_exit_1(monkeypatch):
    monkeypatch.setenv("HPDIRS_OFFLINE", "1")
    result = runner.invoke(app, ["download", "--model", "biggan-deep-256"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: offline and biggan-deep-256 is not in the cache")
    assert "Traceback" not in result.stderr + result.stdout and result.stderr.count("\n") == 1


def test_download_lands_in_the_cache_and_loads_from_it(tiny_weights):
    fetch = fetch_from(tiny_weights)
    progress = []
    files = w.resolve_weights("biggan-deep-128", fetch=fetch, progress=lambda *a: progress.append(a))
    assert files.source == "download" and files.folder == w.cache_root() / "biggan-deep-128"
    assert fetch.asked[0] == "https://huggingface.co/osanseviero/BigGAN-deep-128/resolve/main/config.json"
    assert json.loads((files.folder / "download.json").read_text())["pytorch_model.bin"] == files.weights.stat().st_size
    assert progress and sorted(p.name for p in files.folder.iterdir()) == ["config.json", "download.json", "pytorch_model.bin"]
    g = load_biggan("biggan-deep-128", class_=207, fetch=fetch_from(tiny_weights, fail_urls=["http"]))
    assert g.weights.source == "cache" and g.name == "biggan-deep-128"
    assert torch.isfinite(g(g.sample_z(1))).all()


def test_second_mirror_is_tried_when_the_first_fails(tiny_weights):
    fetch = fetch_from(tiny_weights, fail_urls=["huggingface.co/osanseviero"])
    files = w.resolve_weights("biggan-deep-128", fetch=fetch)
    assert files.source == "download"
    assert fetch.asked[1] == "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-128-config.json"


def test_failed_download_names_the_urls_and_the_way_out(tiny_weights):
    with pytest.raises(WeightsError) as info:
        w.resolve_weights("biggan-deep-128", fetch=fetch_from(tiny_weights, fail_urls=["http"]))
    message = str(info.value)
    for fragment in ["could not download config.json", "huggingface.co", "s3.amazonaws.com", "404",
                     str(w.cache_root() / "biggan-deep-128"), "`weights`"]:
        assert fragment in message


@pytest.mark.parametrize("interrupt", [False, True])
def test_an_interrupted_download_leaves_nothing_a_later_run_would_load(tiny_weights, interrupt):
    fetch = fetch_from(tiny_weights, cut_after=1000, interrupt=interrupt)
    with pytest.raises(KeyboardInterrupt if interrupt else WeightsError):
        w.resolve_weights("biggan-deep-128", fetch=fetch)
    folder = w.cache_root() / "biggan-deep-128"
    assert not (folder / "pytorch_model.bin").exists()
    # what arrived is at most kept under the .partial name, for the next download to resume
    assert {p.name for p in folder.glob("pytorch_model.bin*")} <= {"pytorch_model.bin.partial"}
    with pytest.raises(WeightsError, match="not in the cache"):
        w.resolve_weights("biggan-deep-128", offline=True)


def test_a_cached_file_damaged_after_download_is_detected(tiny_weights):
    files = w.resolve_weights("biggan-deep-128", fetch=fetch_from(tiny_weights))
    data = files.weights.read_bytes()
    files.weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="damaged"):
        w.resolve_weights("biggan-deep-128", offline=True)


def test_files_put_in_the_cache_by_hand_are_used(tiny_weights):
    shutil.copytree(tiny_weights, w.cache_root() / "biggan-deep-256")
    assert w.resolve_weights("biggan-deep-256", offline=True).source == "cache"


def test_http_fetch_streams_a_url_and_reports_progress(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.undo()  # the real http_fetch, on a file:// URL: no network involved
    seen = []
    dest = tmp_path / "pytorch_model.bin.partial-1"
    w.http_fetch((tiny_weights / "pytorch_model.bin").as_uri(), dest, lambda *a: seen.append(a))
    assert dest.read_bytes() == (tiny_weights / "pytorch_model.bin").read_bytes()
    assert seen[-1] == ("pytorch_model.bin", dest.stat().st_size, dest.stat().st_size)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HPDIRS_CACHE", str(tmp_path / "c"))
    assert w.cache_root() == tmp_path / "c"
    monkeypatch.delenv("HPDIRS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert w.cache_root() == tmp_path / "x" / "hpdirs"
