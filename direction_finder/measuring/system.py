"""What a bug report needs about this machine (`hpdirs doctor`): hpdirs' and Python's versions,
torch and its build, the devices it sees, the cache folder and what it holds, and whether a C++
compiler is there for `--compile`."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from direction_finder.compiled import compile_cache_folder
from direction_finder.generators.catalogue import MODEL_NAMES
from direction_finder.generators.weights import cache_root


def _size_mb(folder: Path) -> float:
    """MiB of the regular files below `folder` (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total / 2**20


def system_report() -> dict[str, Any]:
    """The facts, as plain data (the command adds hpdirs' version, prints them or emits JSON)."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    root = cache_root()
    models = {name: str(root / name) for name in MODEL_NAMES if (root / name / "pytorch_model.bin").is_file()}
    compiled = compile_cache_folder()
    compiler = shutil.which(os.environ.get("CXX", "")) if os.environ.get("CXX") else None
    compiler = compiler or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torch_build": f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU",
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps": mps,
        "cache": str(root),
        "cache_mb": round(_size_mb(root), 1) if root.is_dir() else 0.0,
        "cached_models": models,
        "compiled_cache": str(compiled),
        "compiled_cache_mb": round(_size_mb(compiled), 1) if compiled.is_dir() else 0.0,
        "cxx_compiler": compiler,  # --compile needs one on a CPU; without, it runs eagerly with a warning
    }
