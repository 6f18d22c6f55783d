"""The notebook in examples/ runs, top to bottom, on a run made here with a tiny random
BigGAN-deep, and what is committed of it has no outputs that could go stale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "directions.ipynb"


def test_the_committed_notebook_holds_no_outputs():
    """Outputs are made where it runs; committed ones would show another machine's, soon stale."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.docs_examples
def test_the_notebook_runs_on_a_run_it_is_given(tmp_path, tiny_weights, monkeypatch):
    import nbclient
    import nbformat

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "biggan-deep-128").symlink_to(tiny_weights, target_is_directory=True)
    monkeypatch.setenv("HPDIRS_CACHE", str(cache))  # the commands and the kernel inherit this process's
    monkeypatch.setenv("HPDIRS_OFFLINE", "1")
    for args in (["learn", "--class", "golden_retriever", "--steps", "2", "--name", "first-try", "--device", "cpu"],
                 ["label", "outputs/golden_retriever/first-try", "3", "pose", "--layers", "0-3"]):
        done = subprocess.run([sys.executable, "-m", "hpdirs_cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4  # the samples, before/after, layers, sweep
    printed = "".join(o.get("text", "") for o in outputs)
    assert "3: pose (layers 0-3)" in printed and "per-layer latents: (3, 5, 16)" in printed
    import numpy as np

    assert np.load(tmp_path / "edited.npy").shape == (3, 16)
