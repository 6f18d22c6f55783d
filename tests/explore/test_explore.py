"""hpdirs explore: the API through a real server on a free port and real HTTP requests, and the
page in a real headless Chromium (Playwright, the system's chromium)."""

import contextlib
import io
import json
import shutil
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from helpers import runner
from PIL import Image

from direction_finder import load_directions
from direction_finder.explore import make_server, open_explorer
from direction_finder.generators import GeneratorChoice
from direction_finder.learning.runner import RunRequest, learn_run


@pytest.fixture(scope="module")
def biggan_run(tmp_path_factory, tiny_weights):
    """A few steps of learning on the tiny random BigGAN: a run folder as a user has one."""
    root = tmp_path_factory.mktemp("explore")
    choice = GeneratorChoice(weights=tiny_weights, class_="golden_retriever", device="cpu", offline=True)
    settings = {"steps": 2, "num_directions": 6, "eval_every": 0, "batch_size": 1}
    return learn_run(RunRequest(choice, settings, out_root=root, name="run")).run_dir


@pytest.fixture()
def server(biggan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    running = make_server(open_explorer(run, GeneratorChoice(device="cpu", offline=True))).start()
    yield running
    running.stop()


PICTURES = ("/api/image", "/api/latent.npy", "/api/sweep.gif")  # run the generator: the page's token is needed


def call(server, path, body=None, headers=None):
    """A request to the server; one for a picture carries the page's token unless `headers` are given."""
    if headers is None and path.startswith(PICTURES):
        headers = {"X-Hpdirs-Token": server.token}
    request = urllib.request.Request(server.url + path.lstrip("/"), data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def label(server, index, name, headers=None):
    sent = {"Content-Type": "application/json", "X-Hpdirs-Token": server.token, **(headers or {})}
    return call(server, "/api/label", json.dumps({"index": index, "name": name}).encode(), sent)


def test_metadata_and_the_page(server):
    status, kind, body = call(server, "/api/meta")
    meta = json.loads(body)
    assert status == 200 and kind == "application/json"
    assert meta["num_directions"] == 6 and meta["sets"] == ["learned", "axes", "sefa"] and meta["class_conditional"]
    assert meta["class_index"] == 207 and meta["eta"] == 5.0 and meta["names"] == [f"d{i}" for i in range(6)]
    status, kind, page = call(server, "/")
    assert status == 200 and kind.startswith("text/html") and server.token.encode() in page
    assert b"http://" not in page and b"https://" not in page  # nothing from the network
    for asset in ("/static/app.js", "/static/app.css"):
        status, _, text = call(server, asset)
        assert status == 200 and b"https://" not in text and b"http://" not in text


def test_an_image_changes_with_a_coefficient_and_repeats_exactly(server):
    status, kind, first = call(server, "/api/image?c=1:3.0&seed=4&samples=2")
    assert status == 200 and kind == "image/png"
    width, height = Image.open(io.BytesIO(first)).size
    assert width > height  # two samples side by side
    assert call(server, "/api/image?c=1:3.0&seed=4&samples=2")[2] == first
    assert call(server, "/api/image?c=1:-3.0&seed=4&samples=2")[2] != first
    assert call(server, "/api/image?c=1:3.0&seed=5&samples=2")[2] != first
    assert call(server, "/api/image?set=axes&c=1:3.0&seed=4&samples=2")[2] != first
    other_class = call(server, "/api/image?c=1:3.0&seed=4&samples=2&class=281")
    other_truncation = call(server, "/api/image?c=1:3.0&seed=4&samples=2&truncation=0.8")
    assert other_class[0] == 200 and other_class[2] != first
    assert other_truncation[0] == 200 and other_truncation[2] != first
    # the latents shown are z + w Q, with z the seeded sample
    status, _, npy = call(server, "/api/latent.npy?c=1:3.0&seed=4&samples=2")
    zero = np.load(io.BytesIO(call(server, "/api/latent.npy?seed=4&samples=2")[2]))
    shown = np.load(io.BytesIO(npy))
    matrix = server.explorer.opened.directions.matrix.numpy()
    np.testing.assert_allclose(shown, zero + 3.0 * matrix[1], atol=1e-6)
    status, kind, gif = call(server, "/api/sweep.gif?direction=2&c=1:3.0")
    assert status == 200 and kind == "image/gif" and Image.open(io.BytesIO(gif)).n_frames == 2 * 16 - 2


def test_uploaded_latents_are_the_base_points(server):
    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32) * 0.4
    buffer = io.BytesIO()
    np.save(buffer, z)
    status, _, body = call(server, "/api/latents", buffer.getvalue(), {"X-Hpdirs-Token": server.token})
    assert status == 200 and json.loads(body) == {"count": 3}
    shown = np.load(io.BytesIO(call(server, "/api/latent.npy?latents=uploaded&samples=2")[2]))
    np.testing.assert_array_equal(shown, z[:2])
    status, _, body = call(server, "/api/latents", b"not an array", {"X-Hpdirs-Token": server.token})
    assert status == 400 and "not a .npy" in json.loads(body)["error"]


def test_labels_round_trip_through_the_file(server):
    status, _, body = label(server, 3, "zoom")
    assert status == 200 and json.loads(body) == {"labels": {"3": "zoom"}}
    assert json.loads(call(server, "/api/meta")[2])["names"][3] == "zoom"
    assert load_directions(server.explorer.opened.path).labels == {3: "zoom"}
    status, _, body = label(server, 4, "zoom")
    assert status == 400 and "already named 'zoom'" in json.loads(body)["error"]


@pytest.mark.parametrize("path, message", [
    ("/api/image?samples=9", "samples must be an integer from 1 to 4, got 9"),
    ("/api/image?c=99:1", "direction must be an integer from 0 to 5, got 99"),
    ("/api/image?c=1:abc", "is not index:value"),
    ("/api/image?c=1:1e9", "coefficient must be a number"),
    ("/api/image?set=pca", "set 'pca' is not one of learned, axes, sefa"),
    ("/api/image?seed=x", "seed='x' is not a number"),
    ("/api/image?truncation=3", "truncation must be a number from 0.02 to 1"),
    ("/api/image?latents=uploaded", "no latents were uploaded"),
    ("/api/sweep.gif?direction=../x", "is not an index"),
    ("/api/sweep.gif?direction=%D9%A3", "is not an index"),  # a Unicode digit: str.isdigit, not int
    ("/api/image?seq=%C2%B2", "seq='²' is not an index"),
    ("/api/image?seq=" + "9" * 5000, "is not an index"),
    ("/api/image?seed=" + "9" * 5000, "is not a number"),
    ("/api/image?seed=4294967296", "seed must be an integer from 0 to 4,294,967,295"),
])
def test_bad_parameters_are_a_400_with_one_line(server, path, message):
    status, kind, body = call(server, path)
    assert status == 400 and kind == "application/json"
    error = json.loads(body)["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml", "/../../etc/passwd", "/static/app.py",
    "/static/", "//etc/passwd", "/api/../static/app.js", "/index.html",
])
def test_no_request_reaches_the_filesystem(server, path):
    status, _, body = call(server, path)
    assert status == 404 and b"root:" not in body and b"[project]" not in body


def test_label_writes_from_another_origin_or_without_the_token_are_refused(server):
    assert label(server, 1, "x", {"X-Hpdirs-Token": "guess"})[0] == 403
    assert label(server, 1, "x", {"Origin": "http://evil.example"})[0] == 403
    assert call(server, "/api/label", b'{"index": 1, "name": "x"}', {"Content-Type": "text/plain"})[0] == 403
    assert load_directions(server.explorer.opened.path).labels == {}


def test_a_superseded_request_is_dropped_and_the_newest_wins(server):
    explorer = server.explorer
    from direction_finder.explore import View

    explorer.latest["page"] = 7  # the page already sent request 7
    assert explorer.image(View.of("learned", {1: 1.0}), "page", 5) is None
    assert explorer.image(View.of("learned", {1: 1.0}), "page", 8) is not None
    assert call(server, "/api/image?c=2:1&client=page&seq=3")[0] == 409


def _browser():
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's)")
    return playwright, chromium


@contextlib.contextmanager
def _loaded_page(server, console_errors: bool = False):
    """The explorer's page in headless chromium, its first picture shown, and the list its script
    errors (with `console_errors`, the console's errors too) are collected in."""
    playwright, chromium = _browser()
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        if console_errors:
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url)
        page.wait_for_function("document.getElementById('image-learned').src.startsWith('blob:')")
        yield page, errors
        browser.close()


def test_the_page_in_a_real_browser(server):
    with _loaded_page(server, console_errors=True) as (page, errors):
        before = page.eval_on_selector("#image-learned", "img => img.src")
        page.fill('.slider[data-index="1"] input[type=range]', "3")  # fires input, as a drag does
        page.wait_for_function(f"document.getElementById('image-learned').src !== {json.dumps(before)}")
        assert page.eval_on_selector("#image-learned", "img => img.dataset.view") == "1:3"
        name = page.locator('.slider[data-index="2"] input[type=text]')
        name.fill("zoom")
        with page.expect_response("**/api/label"):
            name.press("Enter")
            name.blur()
        page.reload()
        page.wait_for_selector('.slider[data-index="2"]')
        assert page.input_value('.slider[data-index="2"] input[type=text]') == "zoom"
    assert load_directions(server.explorer.opened.path).labels == {2: "zoom"}
    assert errors == []


def test_the_command_prints_its_url_serves_and_stops_cleanly_on_ctrl_c(biggan_run, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    process = subprocess.Popen([sys.executable, "-m", "hpdirs_cli", "explore", str(run), "--device", "cpu", "--offline"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        line = process.stdout.readline()
        assert line.startswith("hpdirs explore: http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/meta", timeout=60) as response:
            assert json.loads(response.read())["num_directions"] == 6
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "stopped" in out and "Traceback" not in err


def test_open_without_a_browser_says_so_and_serves_anyway(biggan_run, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "200", "BROWSER": str(tmp_path / "no-such-browser"), "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    process = subprocess.Popen([sys.executable, "-m", "hpdirs_cli", "explore", str(biggan_run), "--device", "cpu",
                                "--offline", "--open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)  # fmt: skip
    try:
        url = process.stdout.readline().split()[2]
        warning = process.stderr.readline()
        assert warning == f"warning: no browser could be opened here; open {url} yourself\n", warning
        with urllib.request.urlopen(url + "api/meta", timeout=60) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_a_port_in_use_is_one_line(biggan_run, server):

    from hpdirs_cli.main import app

    port = server.url.rsplit(":", 1)[1].strip("/")
    result = runner.invoke(app, ["explore", str(biggan_run), "--device", "cpu", "--offline", "--port", port])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1


def raw(server, method, path, headers, body=None):
    """A request with exactly these headers (urllib would set Host itself)."""
    import http.client

    host, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in {**headers, **({"Content-Length": str(len(body))} if body else {})}.items():
        connection.putheader(key, value)
    connection.endheaders(body)
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
                                  "localhost.evil.example:{port}", "127.0.0.1:1", "", "user@127.0.0.1:{port}",
                                  "127.0.0.1:x", "[::1"])
def test_a_foreign_host_header_is_refused_before_anything_is_served(server, host):
    """DNS rebinding: another site's name pointed at 127.0.0.1 reaches the socket, never the page."""
    port = server.httpd.server_address[1]
    headers = {"Host": host.format(port=port)} if host else {}
    status, body = raw(server, "GET", "/", headers)
    assert status == 403 and server.token.encode() not in body
    sent = {**headers, "X-Hpdirs-Token": server.token, "Content-Type": "application/json"}
    assert raw(server, "POST", "/api/label", sent, b'{"index": 1, "name": "x"}')[0] == 403
    assert load_directions(server.explorer.opened.path).labels == {}


def test_the_names_of_this_server_are_accepted(server):
    port = server.httpd.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, body = raw(server, "GET", "/", {"Host": host})
        assert status == 200 and server.token.encode() in body
    sent = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}", "X-Hpdirs-Token": server.token,
            "Content-Type": "application/json"}
    assert raw(server, "POST", "/api/label", sent, b'{"index": 1, "name": "x"}')[0] == 200
    rebound = {**sent, "Origin": f"http://evil.example:{port}"}  # the Host is ours, the page is not
    assert raw(server, "POST", "/api/label", rebound, b'{"index": 2, "name": "y"}')[0] == 403
    assert load_directions(server.explorer.opened.path).labels == {1: "x"}


def test_every_interface_accepts_addresses_warns_and_still_refuses_names(biggan_run, tmp_path):
    from direction_finder.errors import HpdirsWarning

    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    with pytest.warns(HpdirsWarning, match="anyone who can reach this machine can open it"):
        running = make_server(open_explorer(run, GeneratorChoice(device="cpu", offline=True)), "0.0.0.0").start()
    try:
        port = running.httpd.server_address[1]
        host, _ = running.httpd.server_address[:2]
        running.httpd.server_address = ("127.0.0.1", port)  # raw() connects here
        assert raw(running, "GET", "/api/meta", {"Host": f"127.0.0.1:{port}"})[0] == 200
        assert raw(running, "GET", "/api/meta", {"Host": f"10.1.2.3:{port}"})[0] == 200  # an address: no rebinding
        assert raw(running, "GET", "/api/meta", {"Host": f"evil.example:{port}"})[0] == 403
    finally:
        running.stop()


def test_a_body_announced_and_never_sent_does_not_hold_a_thread(biggan_run, tmp_path, monkeypatch):
    import socket
    import time

    from direction_finder.explore import server as server_module

    monkeypatch.setattr(server_module._Handler, "timeout", 0.5)
    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    running = make_server(open_explorer(run, GeneratorChoice(device="cpu", offline=True))).start()
    try:
        host, port = running.httpd.server_address[:2]
        stalled = socket.create_connection((host, port), timeout=30)
        stalled.sendall(f"POST /api/label HTTP/1.1\r\nHost: {host}:{port}\r\nX-Hpdirs-Token: {running.token}\r\n"
                        "Content-Length: 100\r\n\r\n{".encode())
        started = time.monotonic()
        assert stalled.recv(1024) == b""  # closed by the server, without an answer
        assert time.monotonic() - started < 20
        stalled.close()
        assert call(running, "/api/meta")[0] == 200
    finally:
        running.stop()


def test_out_of_range_ports_are_one_line(biggan_run):

    from hpdirs_cli.main import app

    for port in ("70000", "-1"):
        result = runner.invoke(app, ["explore", str(biggan_run), "--device", "cpu", "--offline", "--port", port])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
        assert f"--port {port} is not a port" in result.stderr


def test_bad_bodies_are_a_400_with_one_line(server):
    import io as _io

    token = {"X-Hpdirs-Token": server.token}
    nested = b'{"index": ' + b"[" * 100_000 + b"]" * 100_000 + b', "name": "x"}'
    status, _, body = call(server, "/api/label", nested, token)
    assert status == 400 and "must be JSON" in json.loads(body)["error"]
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**13, 16)}
    claimed = _io.BytesIO()
    np.lib.format.write_array_header_1_0(claimed, header)
    status, _, body = call(server, "/api/latents", claimed.getvalue() + bytes(64), token)
    assert status == 400 and "1 <= n <= 1024" in json.loads(body)["error"]
    huge = _io.BytesIO()
    np.save(huge, np.full((2, 16), 1e300))
    status, _, body = call(server, "/api/latents", huge.getvalue(), token)
    assert status == 400 and "float32's range" in json.loads(body)["error"]
    assert json.loads(call(server, "/api/meta")[2])["uploaded_latents"] == 0
    status, _, body = label(server, 1, "right\u202eleft")
    assert status == 400 and "printable" in json.loads(body)["error"]


def test_closing_stops_a_sweep_at_its_next_frame(biggan_run, tmp_path):
    """Stop means stop: close() while a 16-frame GIF is being made waits for one forward, not 16."""
    import threading
    import time

    from direction_finder.errors import UsageError
    from direction_finder.explore import View

    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    explorer = open_explorer(run, GeneratorChoice(device="cpu", offline=True))
    fast = explorer.opened.generator
    calls = []

    class Slow:  # the generator, 0.2 s a forward: a sweep takes 16 of them
        def __getattr__(self, name):
            return getattr(fast, name)

        def __call__(self, z):
            calls.append(time.monotonic())
            time.sleep(0.2)
            return fast(z)

    explorer.generators[(None, None)] = Slow()
    failure = []

    def sweep():
        try:
            explorer.sweep_gif(View(), 1)
        except UsageError as exc:
            failure.append(str(exc))

    worker = threading.Thread(target=sweep)
    worker.start()
    while len(calls) < 2:
        time.sleep(0.01)
    started = time.monotonic()
    explorer.close()
    worker.join(timeout=30)
    assert time.monotonic() - started < 1.0 and len(calls) <= 3
    assert failure == ["the explorer is stopping"]


def test_the_class_box_takes_a_name_with_the_same_search_as_hpdirs_classes(server):
    status, _, body = call(server, "/api/class?q=tabby")
    assert status == 200 and json.loads(body)["index"] == 281 and json.loads(body)["name"] == "tabby"
    assert json.loads(call(server, "/api/class?q=207")[2])["name"] == "golden retriever"
    status, _, body = call(server, "/api/class?q=golden_retreiver")
    assert status == 400 and "closest: 207 golden retriever" in json.loads(body)["error"]


def test_the_class_box_and_the_layer_range_in_a_real_browser(server):
    with _loaded_page(server) as (page, _):
        assert page.text_content("#class-name") == "207 golden retriever"
        before = page.eval_on_selector("#image-learned", "img => img.src")
        page.fill("#class", "tabby")
        page.dispatch_event("#class", "change")
        page.wait_for_function("document.getElementById('class-name').textContent === '281 tabby'")
        page.wait_for_function(f"document.getElementById('image-learned').src !== {json.dumps(before)}")
        page.fill("#class", "golden_retreiver")
        page.dispatch_event("#class", "change")
        page.wait_for_function("document.getElementById('class-error').textContent.includes('closest')")
        assert page.text_content("#class-name") == "281 tabby"  # a name that matches nothing changes nothing
        assert page.is_visible("#layer-first") and page.input_value("#layer-first") == "0"
        page.fill('.slider[data-index="1"] input[type=range]', "3")
        page.wait_for_function("document.getElementById('image-learned').dataset.view === '1:3'")
        edited = page.eval_on_selector("#image-learned", "img => img.src")
        with page.expect_request(lambda request: "layers=2-" in request.url):
            page.fill("#layer-first", "2")
            page.dispatch_event("#layer-first", "change")
        page.wait_for_function(f"document.getElementById('image-learned').src !== {json.dumps(edited)}")


def test_a_layer_range_limits_the_edit_to_those_layers(server):
    meta = json.loads(call(server, "/api/meta")[2])
    L = meta["latent_layers"]
    assert L == server.explorer.opened.generator.latent_layers > 2
    plain = call(server, "/api/image?c=1:3.0&seed=4")[2]
    assert call(server, f"/api/image?c=1:3.0&seed=4&layers=0-{L - 1}")[2] == plain  # every layer: the plain edit
    late = call(server, f"/api/image?c=1:3.0&seed=4&layers=2-{L - 1}")
    assert late[0] == 200 and late[2] != plain
    shown = np.load(io.BytesIO(call(server, "/api/latent.npy?c=1:3.0&seed=4&layers=2-3")[2]))
    base = np.load(io.BytesIO(call(server, "/api/latent.npy?seed=4")[2]))
    assert shown.shape == (1, L, 16)
    np.testing.assert_array_equal(shown[0, :2], np.repeat(base, 2, axis=0))  # layers 0-1: unedited
    gif = call(server, f"/api/sweep.gif?direction=2&layers=2-{L - 1}")
    assert gif[0] == 200 and gif[1] == "image/gif"
    for bad, message in ((f"0-{L}", f"is outside this generator's layers 0-{L - 1}"),
                         ("3-1", "is not a range of layers such as 0-3"), ("x-2", "is not a range of layers")):
        status, _, body = call(server, f"/api/image?c=1:3.0&layers={bad}")
        assert status == 400 and message in json.loads(body)["error"], body


# --- a client that misbehaves: resets, abandons, floods ---------------------------------------


def _reset(address, request: bytes) -> None:
    """Send `request` (perhaps half of one) to (host, port) and reset the connection (RST, not
    FIN), as a client that crashes or aborts does."""
    import socket
    import struct

    connection = socket.create_connection(address, timeout=30)
    connection.sendall(request)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _picture_request(address, token: str, path: str) -> bytes:
    host, port = address
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Hpdirs-Token: {token}\r\n\r\n".encode()


def test_clients_that_reset_their_connections_leave_no_traceback(server, capfd):
    address = server.httpd.server_address[:2]
    for n in range(10):
        _reset(address, _picture_request(address, server.token, f"/api/image?seed={n}&c=1:2"))
        _reset(address, b"GET /api/me")  # half a request line
        _reset(address, _picture_request(address, server.token, f"/api/sweep.gif?direction=1&seed={n}"))
    assert call(server, "/api/image?seed=99")[0] == 200  # still answering
    time.sleep(0.5)  # the threads of the reset connections are done with them
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err


def test_abandoned_sweeps_are_dropped_and_a_new_image_comes_at_once(server):
    """150 sweeps asked for and abandoned at once: work for a client that has gone is dropped, and
    no more than a few sweeps ever wait, so the next image takes a few of its normal times."""
    import statistics

    def image_time(seed):
        started = time.perf_counter()
        assert call(server, f"/api/image?seed={seed}&c=2:1")[0] == 200
        return time.perf_counter() - started

    image_time(0)  # warm
    normal = statistics.median(image_time(seed) for seed in range(1, 6))
    address = server.httpd.server_address[:2]
    for n in range(150):
        _reset(address, _picture_request(address, server.token, f"/api/sweep.gif?direction=1&seed={1000 + n}"))
    after = image_time(6)
    assert after < 5 * normal + 0.5, (after, normal)
    deadline = time.monotonic() + 30
    while any(server.explorer.pending.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(server.explorer.pending.values())  # nothing left queued for the gone clients


def test_pictures_need_the_pages_token_and_a_full_queue_is_a_503(server, monkeypatch):
    for path in ("/api/image?seed=1", "/api/sweep.gif?direction=1", "/api/latent.npy?seed=1"):
        assert call(server, path, headers={})[0] == 403  # an <img> on another page knows no token
        assert call(server, path + f"&token={server.token}", headers={})[0] == 200  # the page's own links
    from direction_finder.explore import session

    monkeypatch.setitem(session.MAX_PENDING, "image", 0)
    status, _, body = call(server, "/api/image?seed=2")
    assert status == 503 and "too many image requests at once" in json.loads(body)["error"]


def test_a_token_that_is_not_ascii_is_a_403(server):
    import http.client

    host, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("POST", "/api/label", body=b'{"index": 1, "name": "x"}',
                       headers={"X-Hpdirs-Token": "caf\u00e9", "Content-Type": "application/json"})  # fmt: skip
    response = connection.getresponse()
    assert response.status == 403 and b"Error" not in response.read()
    connection.close()


def test_sigterm_ends_the_explorer_like_every_command_and_resets_leave_its_log_clean(biggan_run, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    process = subprocess.Popen([sys.executable, "-m", "hpdirs_cli", "explore", str(run), "--device", "cpu", "--offline"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    try:
        line = process.stdout.readline()
        url = line.split()[2]
        with urllib.request.urlopen(url, timeout=60) as response:
            token = response.read().decode().split('name="hpdirs-token" content="')[1].split('"')[0]
        host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
        address = (host, int(port))
        for n in range(10):
            _reset(address, _picture_request(address, token, f"/api/sweep.gif?direction=1&seed={n}"))
            _reset(address, b"GET /api/im")
        with urllib.request.urlopen(url + "api/meta", timeout=60) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err == "error: stopped by SIGTERM\n", err  # the resets and aborts left nothing on the terminal


def test_a_labels_layers_are_the_layers_the_explorer_moves(biggan_run, tmp_path):
    """`hpdirs label RUN 0 pose --layers 0-1`: render applies direction 0 to latent layers 0-1
    only, and so does the explorer (a named direction looks the same wherever it is shown)."""
    from direction_finder.artifacts.directions import name_direction
    from direction_finder.explore.session import View
    from direction_finder.method.sweeps import layer_edit

    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    name_direction(run, 0, "pose", "0-1")
    explorer = open_explorer(run, GeneratorChoice(device="cpu", offline=True))
    try:
        assert explorer.metadata()["label_layers"] == {"0": [0, 1]}
        view = View.of(coefficients={0: 3.0, 2: -1.0}, samples=2)
        base, Q, count = explorer.latents(view), explorer.sets["learned"], explorer.opened.generator.latent_layers
        moved = layer_edit(base, base + 3.0 * Q[0], range(0, 2), count)  # direction 0 on layers 0-1
        expected = moved + (-1.0 * Q[2])[None, None, :]  # direction 2, unnamed: every layer
        torch.testing.assert_close(explorer.edited(view), expected, atol=1e-6, rtol=0)
        everywhere = explorer.edited(View.of(coefficients={0: 3.0, 2: -1.0}, samples=2, layers=(0, count - 1)))
        assert not torch.allclose(everywhere, expected)  # an explicit range for all overrides the label's
    finally:
        explorer.close()


def test_the_layer_control_explains_itself_and_a_failed_class_keeps_the_shown_one(server):
    with _loaded_page(server) as (page, errors):
        assert "0 is the first linear layer, then one per block" in page.inner_text("#layer-help")
        assert "early layers change pose and shape" in page.inner_text("#layer-help").lower()
        last = server.explorer.opened.generator.latent_layers - 1
        page.fill("#layer-last", str(last + 5))
        page.dispatch_event("#layer-last", "change")
        assert f"from 0 to {last}" in page.inner_text("#layer-error")  # said beside the control
        page.fill("#layer-last", str(last))
        page.dispatch_event("#layer-last", "change")
        assert page.inner_text("#layer-error") == ""
        shown = page.inner_text("#class-name")
        page.fill("#class", "golden retreiver")
        with page.expect_response("**/api/class*"):
            page.dispatch_event("#class", "change")
        page.wait_for_function("document.getElementById('class-error').textContent !== ''")
        assert "unknown class 'golden retreiver'" in page.inner_text("#class-error")
        assert page.input_value("#class") == "golden retriever" and page.inner_text("#class-name") == shown
        suggestion = page.locator("#class-suggestions button", has_text="golden retriever")
        with page.expect_response("**/api/class*"):
            suggestion.click()  # a suggestion is a button: clicking it chooses that class
        page.wait_for_function("document.getElementById('class-error').textContent === ''")
        assert page.inner_text("#class-name") == "207 golden retriever"
    assert errors == []


def test_the_explorer_makes_its_pictures_on_every_device(device, biggan_run, tmp_path):
    from direction_finder.explore.session import View

    run = tmp_path / "run"
    shutil.copytree(biggan_run, run)
    explorer = open_explorer(run, GeneratorChoice(device=device, offline=True))
    try:
        assert explorer.opened.generator.device.type == device
        png = explorer.image(View.of(coefficients={1: 2.0}, samples=2))
        assert png is not None and Image.open(io.BytesIO(png)).size[0] >= 2 * 32
    finally:
        explorer.close()
