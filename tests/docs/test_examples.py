"""Every example in the documentation that can run offline runs here, as a reader would type it:
each page's ```bash and ```python blocks in order, in a fresh folder that holds the tutorial's
run (outputs/golden_retriever/first-try), with the cache holding a tiny random BigGAN-deep
(32 px, z_dim 16) under the published models' names and the network off. A block that cannot
run here says why in a `<!-- not run: ... -->` line just above it (it needs a GPU, a download,
a server that waits for Ctrl-C, or hours). The command pages' examples come from the commands'
own help (docs/generated/); the few of those that cannot run here are named in NOT_RUN."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(p for p in (ROOT / "docs").rglob("*.md") if "generated" not in p.parts)])
GENERATED = sorted((ROOT / "docs" / "generated").glob("*.md"))
NOT_RUN = {  # a help example's start -> why it cannot run here
    "hpdirs download": "downloads the published weights",
    "hpdirs explore": "a server that runs until Ctrl-C",
    "torchrun": "several processes, for several GPUs",
}
FENCE = re.compile(r"(?:<!-- not run: (?P<why>[^>]+?) -->\n)?```(?P<lang>bash|python)\n(?P<code>.*?)\n```", re.S)
pytestmark = pytest.mark.docs_examples


def examples(page: Path) -> list[tuple[str, str]]:
    """(language, code) of the page's runnable blocks, in order."""
    text = page.read_text(encoding="utf-8")
    found = [(m["lang"], m["code"]) for m in FENCE.finditer(text) if not m["why"]]
    if page in GENERATED:  # the help's examples, a command a line: all but those NOT_RUN names
        found = [(lang, line) for lang, code in found for line in code.splitlines()
                 if not line.startswith(tuple(NOT_RUN))]  # fmt: skip
    return found


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory):
    from direction_finder.generators.random_weights import save_random_biggan, tiny_config

    cache = tmp_path_factory.mktemp("cache")
    for model in ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512"):
        save_random_biggan(cache / model, tiny_config(), seed=0)
    return cache


def environment(cache: Path, home: Path) -> dict[str, str]:
    """The tiny cache, no network, a home of the test's own (`>> ~/.bashrc` lands there)."""
    return {**os.environ, "HPDIRS_CACHE": str(cache), "HPDIRS_OFFLINE": "1", "COLUMNS": "100", "HOME": str(home),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip


@pytest.fixture(scope="module")
def first_try(offline_cache, tmp_path_factory):
    """The run the tutorial makes and the other pages assume, learned once and copied to each."""
    folder = tmp_path_factory.mktemp("first-try")
    done = subprocess.run(
        ["hpdirs", "learn", "--class", "golden_retriever", "--recipe", "sefa", "--steps", "4", "--name", "first-try"],
        cwd=folder, env=environment(offline_cache, folder), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder / "outputs"


def test_the_examples_are_found_and_reasons_given():
    """The pattern finds the blocks (a typo in a fence would drop an example silently)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
    fenced = len(re.findall(r"^```(?:bash|python)$", text, re.M))
    found = sum(len(FENCE.findall(p.read_text(encoding="utf-8"))) for p in PAGES)
    assert found == fenced > 0
    assert not re.findall(r"^```(?:sh|shell|console|zsh)$", text, re.M), "write shell examples as ```bash"


@pytest.mark.parametrize("page", [p for p in PAGES + GENERATED if examples(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_the_page_s_examples_run(page, offline_cache, first_try, tmp_path):
    blocks = examples(page)
    tutorial = page.name in ("README.md", "tutorial.md")  # they make the run themselves
    if not tutorial:
        shutil.copytree(first_try, tmp_path / "outputs")
    env = environment(offline_cache, tmp_path)
    for lang, code in blocks:
        command = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{page.name}: this {lang} example failed:\n{code}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
