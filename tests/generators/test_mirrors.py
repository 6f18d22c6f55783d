"""Downloads against a real local HTTP server laid out like the published mirrors: order and
fallback, a connection dropped half way (resumed with Range, or restarted where the server has
no Range), a wrong size refused and not cached, a 404 on the first mirror."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import runner

from direction_finder.errors import WeightsError
from direction_finder.generators import weights as w
from direction_finder.generators.weights import http_fetch as real_fetch  # before the tests' no-network guard


class Mirror:
    """Serves {path: bytes}; `drop` cuts the first answer of a path after that many bytes,
    `ranges` says whether Range requests are honoured, `lie` announces a wrong length."""

    def __init__(self, files, *, drop=None, ranges=True, lie=False):
        self.files, self.drop, self.ranges, self.lie = dict(files), drop, ranges, lie
        self.log, self.dropped = [], set()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                mirror.log.append((self.path, self.headers.get("Range")))
                data = mirror.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                asked = self.headers.get("Range")
                if asked and mirror.ranges:
                    start, status = int(asked.split("=")[1].rstrip("-")), 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) + (7 if mirror.lie else 0)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if mirror.drop is not None and self.path not in mirror.dropped and len(body) > mirror.drop:
                    mirror.dropped.add(self.path)
                    self.wfile.write(body[: mirror.drop])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops half way
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def published(tiny_weights):
    return {name: (tiny_weights / name).read_bytes() for name in ("config.json", "pytorch_model.bin")}


def serve(published, prefix, **kwargs):
    return Mirror({f"{prefix}/{name}": data for name, data in published.items()}, **kwargs)


def download(monkeypatch, *urls):
    monkeypatch.setenv("HPDIRS_WEIGHTS_URL", " ".join(urls))
    return w.resolve_weights("biggan-deep-256", fetch=real_fetch)


def test_mirrors_are_tried_in_order_and_a_404_falls_through(published, monkeypatch):
    empty, full = Mirror({}), serve(published, "/m/biggan-deep-256")
    try:
        files = download(monkeypatch, empty.url + "/nothing/{model}/{file}", full.url + "/m/{model}")
        assert files.weights.read_bytes() == published["pytorch_model.bin"]
        assert [path for path, _ in empty.log] == ["/nothing/biggan-deep-256/config.json",
                                                   "/nothing/biggan-deep-256/pytorch_model.bin"]
    finally:
        empty.close(), full.close()
    assert w.mirrors("biggan-deep-256", "config.json")[-1] == (
        "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-256-config.json")
    assert w.mirrors("biggan-deep-128", "config.json")[-2] == (
        "https://huggingface.co/osanseviero/BigGAN-deep-128/resolve/main/config.json")


@pytest.mark.parametrize("ranges", [True, False])
def test_a_dropped_connection_resumes_with_range_or_restarts(published, monkeypatch, ranges):
    mirror = serve(published, "/m", drop=5000, ranges=ranges)
    try:
        files = download(monkeypatch, mirror.url + "/m")
    finally:
        mirror.close()
    assert files.weights.read_bytes() == published["pytorch_model.bin"]
    retries = [r for path, r in mirror.log if path.endswith(".bin")]
    assert retries == [None, "bytes=5000-"]  # asked to resume; served whole when Range is not honoured
    assert not list(files.folder.glob("*.partial"))


def test_a_wrong_size_is_refused_and_not_cached(published, monkeypatch):
    mirror = serve(published, "/m", lie=True)
    try:
        with pytest.raises(WeightsError, match="could not download config.json"):
            download(monkeypatch, mirror.url + "/m")
    finally:
        mirror.close()
    folder = w.cache_root() / "biggan-deep-256"
    assert not (folder / "config.json").exists() and not list(folder.glob("*.partial"))


def _plant_package_cache(root, source, name="biggan-deep-128", other=None):
    """pytorch-pretrained-biggan's layout: files named by a hash of the URL, a .json sidecar each."""
    import hashlib
    import json

    root.mkdir(parents=True)
    planted = {}
    for filename in ("config.json", "pytorch_model.bin"):
        url = w.S3.format(model=other or name, file=filename)
        data = root / (hashlib.sha256(url.encode()).hexdigest() + ".0123abcd")
        data.symlink_to(source / filename)  # in place: nothing is copied, here or by hpdirs
        (root / (data.name + ".json")).write_text(json.dumps({"url": url, "etag": '"0123"'}))
        planted[filename] = data
    return planted


def _plant_hub_cache(root, source):
    """The Hugging Face hub's layout: blobs, and a snapshot of links to them."""
    repo = root / "models--osanseviero--BigGAN-deep-128"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for filename in ("config.json", "pytorch_model.bin"):
        blob = repo / "blobs" / f"blob-{filename}"
        blob.symlink_to(source / filename)
        (snapshot / filename).symlink_to(blob)
    return snapshot


@pytest.mark.parametrize("kind", ["package", "hub"])
def test_caches_users_already_have_are_used_in_place_without_the_network(full_weights, tmp_path, monkeypatch, kind):
    from direction_finder.generators.biggan import load_biggan

    def forbidden(*args, **kwargs):
        pytest.fail("a cache the user has was not used: the network was asked")

    if kind == "package":
        root = tmp_path / "ppb"
        monkeypatch.setenv("PYTORCH_PRETRAINED_BIGGAN_CACHE", str(root))
        planted = _plant_package_cache(root, full_weights)
        expected = (planted["config.json"], planted["pytorch_model.bin"])
    else:
        root = tmp_path / "hub"
        monkeypatch.setenv("HF_HUB_CACHE", str(root))
        snapshot = _plant_hub_cache(root, full_weights)
        expected = (snapshot / "config.json", snapshot / "pytorch_model.bin")
    files = w.resolve_weights("biggan-deep-128", fetch=forbidden)
    assert (files.config, files.weights) == expected  # the user's own files, not copies
    assert not (w.cache_root() / "biggan-deep-128").exists()
    if kind == "package":  # the same strict loading from there (once: a full-size model takes seconds)
        g = load_biggan("biggan-deep-128", class_=207, fetch=forbidden, device="cpu")
        assert g.weights.weights == expected[1] and g.resolution == 128


def test_a_cached_file_of_another_model_is_not_taken(tiny_weights, tmp_path, monkeypatch):
    root = tmp_path / "ppb"
    monkeypatch.setenv("PYTORCH_PRETRAINED_BIGGAN_CACHE", str(root))
    _plant_package_cache(root, tiny_weights)  # named as biggan-deep-128's URLs, but a 32-px config
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub's own switch counts as offline
    with pytest.raises(WeightsError, match="offline and biggan-deep-128 is not in the cache"):
        w.resolve_weights("biggan-deep-128")


class BadMirror:
    """Serves the published files, but `target` in one of these ways: `html` (200 with an error
    page), `cut` (half the body, no Content-Length, then the connection closes), `short` (announces
    100 bytes fewer than it sends), `trickle` (one byte every 0.2 s)."""

    def __init__(self, files, target, how):
        import time

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                data = files[name]
                if name != target:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if how == "html":
                    data = b"<!doctype html><html><body>502 Bad Gateway</body></html>"
                self.send_response(200)
                if how in ("html", "trickle"):
                    self.send_header("Content-Length", str(len(data)))
                elif how == "short":
                    self.send_header("Content-Length", str(len(data) - 100))
                self.end_headers()
                try:
                    if how == "cut":
                        self.wfile.write(data[: len(data) // 2])
                    elif how == "trickle":
                        for i in range(len(data)):
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                            time.sleep(0.2)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("target", ["config.json", "pytorch_model.bin"])
@pytest.mark.parametrize("how", ["html", "cut", "short", "trickle"])
def test_a_bad_body_never_gets_the_final_name_and_the_next_download_fetches_again(published, monkeypatch,
                                                                                  target, how):
    monkeypatch.setattr(w, "SLOW_GRACE_S", 1.0)
    monkeypatch.setattr(w, "MIN_RATE", 1024)
    monkeypatch.setattr(w, "S3", "http://127.0.0.1:9/{model}-{file}")  # nothing listens: the last mirror fails
    bad = BadMirror(published, target, how)
    try:
        with pytest.raises(WeightsError, match=f"could not download {target.replace('.', '[.]')}"):
            download(monkeypatch, bad.url + "/m")
    finally:
        bad.close()
    folder = w.cache_root() / "biggan-deep-256"
    assert not (folder / target).exists() and not list(folder.glob("*.partial"))
    assert not (folder / "download.json").exists()
    good = serve(published, "/m")
    try:
        files = download(monkeypatch, good.url + "/m")
    finally:
        good.close()
    assert files.source == "download" and files.weights.read_bytes() == published["pytorch_model.bin"]


def test_a_damaged_cache_entry_is_removed_not_kept(published, monkeypatch, tmp_path):
    from direction_finder.generators.biggan import load_biggan

    folder = w.cache_root() / "biggan-deep-128"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(published["config.json"])
    (folder / "pytorch_model.bin").write_bytes(published["pytorch_model.bin"][:5000])  # left by an old version
    with pytest.raises(WeightsError, match="was damaged and has been removed; run again to download it"):
        load_biggan("biggan-deep-128", class_=207, device="cpu", offline=True)
    assert not (folder / "pytorch_model.bin").exists() and not (folder / "config.json").exists()
    (folder / "config.json").write_text("<html>")
    (folder / "pytorch_model.bin").write_bytes(published["pytorch_model.bin"])
    with pytest.raises(WeightsError, match="config.json was damaged and has been removed"):
        w.resolve_weights("biggan-deep-128", offline=True)
    with pytest.raises(WeightsError, match="offline and biggan-deep-128 is not in the cache"):
        w.resolve_weights("biggan-deep-128", offline=True)


@pytest.mark.parametrize("template, problem", [
    ("https://x/{model}/{fil}", "unknown field {fil}"),
    ("https://x/{model", "unexpected '{' in field name"),
    ("https://x/{model.__class__}/{file}", "unknown field {model.__class__}"),
    ("https://x/{model!r}/{file}", "unknown field {model}"),
    ("https://x/{0}/{file}", "unknown field {0}"),
])
def test_a_malformed_mirror_template_is_one_line(monkeypatch, tmp_path, template, problem):

    from hpdirs_cli.main import app

    monkeypatch.setenv("HPDIRS_WEIGHTS_URL", template)
    result = runner.invoke(app, ["download", "--model", "biggan-deep-256"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "$HPDIRS_WEIGHTS_URL template" in result.stderr and problem in result.stderr


@pytest.mark.parametrize("change, message", [
    ({"z_dim": "128"}, "z_dim is '128', not an integer"),
    ({"eps": None}, "eps is None, not a number"),
    ({"layers": [[1, 2, 3]]}, "layers holds [1, 2, 3]"),
    ({"n_stats": True}, "n_stats is True"),
    ({"channel_width": 0}, "channel_width is 0, not a positive integer"),
])
def test_a_weights_config_of_wrong_types_is_one_line(tiny_weights, tmp_path, change, message):
    import json
    import shutil

    from hpdirs_cli.main import app

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    result = runner.invoke(app, ["learn", "--weights", str(folder), "--steps", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
