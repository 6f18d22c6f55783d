"""`hpdirs explore`: the directions in a local page."""

from __future__ import annotations

import signal
from typing import Annotated, Any

from direction_finder.generators.choice import GeneratorChoice
from direction_finder.outputs.settings import RenderSettings
from hpdirs_cli.console import console, err_console, fail, say, user_errors
from hpdirs_cli.options import Compile, Source, flag, opens_a_generator, option
from hpdirs_cli.progress import download_progress

PAGE = "The page"

Host = Annotated[str, option("Address to listen on.\n127.0.0.1 keeps the page to this machine.", panel=PAGE)]
Port = Annotated[int, option("Port to listen on.", "a free port", panel=PAGE)]
OpenBrowser = Annotated[bool, flag("Open the page in the default browser.", "off", "--open", panel=PAGE)]
Eta = Annotated[float, option("Sliders reach from -eta to +eta.", panel=PAGE)]
ETA = RenderSettings().eta  # render's sweeps and the sliders reach as far


@opens_a_generator(recorded=True)
def explore(
    run_or_file: Source,
    host: Host = "127.0.0.1",
    port: Port = 0,
    open_browser: OpenBrowser = False,
    eta: Eta = ETA,
    compile: Compile = "auto",
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Play with the directions in a local page.

    A slider per direction, their names, the layers they edit, and other sets beside them.

    $ hpdirs explore outputs/golden_retriever/first-try --open
    """
    import threading
    import webbrowser

    from direction_finder.explore import make_server, open_explorer

    with user_errors():
        with download_progress() as progress:
            explorer = open_explorer(run_or_file, choice, eta=eta, progress=progress, compile=compile)
        try:
            server = make_server(explorer, host, port)
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") from None
    stop = threading.Event()
    measuring = threading.Thread(target=explorer.measure_activeness, args=(stop,), daemon=True)
    measuring.start()
    say(f"hpdirs explore: {server.url}  (Ctrl-C stops it)")
    if open_browser and not _opened(webbrowser, server.url):
        err_console.print(f"warning: no browser could be opened here; open {server.url} yourself", highlight=False)
    signum = None  # Ctrl-C is the way to stop the explorer (exit 0); SIGTERM or SIGHUP end it (128 + signal)
    try:
        server.serve_forever()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)
    finally:
        stop.set()
        server.httpd.server_close()
        explorer.close()  # queued images cancelled; waits for the forward in progress, if any
        measuring.join(timeout=60)  # torch must not be mid-forward in a thread when the interpreter exits
    if signum is not None:
        raise fail(f"stopped by {signal.Signals(signum).name}", 128 + signum)
    console.print("stopped", highlight=False)


def _opened(webbrowser: Any, url: str) -> bool:
    """Whether a browser was started for `url` (False where none can be: a server, a container)."""
    try:
        return bool(webbrowser.open(url))
    except webbrowser.Error:
        return False
