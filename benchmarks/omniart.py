"""The development real GAN of the quality benchmark: omniart-eye-generator 0.1 (PyPI).

A class-conditional DCGAN, 128 px, z of 100 + an 8-class one-hot. Not a dependency of hpdirs:
`make -C benchmarks setup` installs it with --no-deps. Its package import unpickles CUDA
tensors and fails on CPU, so its generator.py module and state file are loaded directly, the
state with weights_only=True on the CPU.
"""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

import torch
from torch import Tensor

from direction_finder.generators.base import sefa

CLASSES = ("amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red")


def package_dir() -> Path:
    folder = Path(sysconfig.get_paths()["purelib"]) / "omniart_eye_generator"
    if not (folder / "generator_model_state.pth").is_file():
        raise SystemExit("omniart-eye-generator is not installed: run `make -C benchmarks setup`")
    return folder


class EyeGenerator:
    """The DCGAN bound to one eye colour, as a Generator (frozen, eval: no dropout)."""

    z_dim = 100

    def __init__(self, class_name: str = "blue", device: str = "cpu") -> None:
        folder = package_dir()
        spec = importlib.util.spec_from_file_location("omniart_generator", folder / "generator.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.model = module.Generator()
        state = torch.load(folder / "generator_model_state.pth", map_location="cpu", weights_only=True)
        self.model.load_state_dict(state, strict=True)
        self.model.eval().requires_grad_(False)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.label = torch.zeros(1, len(CLASSES), device=self.device)
        self.label[0, CLASSES.index(class_name)] = 1
        self.class_name = class_name
        self.name = f"omniart-eye-{class_name}"

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.z_dim, generator=generator).to(self.device)

    def __call__(self, z: Tensor) -> Tensor:
        # z: (n, 100) -> (n, 3, 128, 128) in [-1, 1]
        x = torch.cat([z.to(self.device, torch.float32), self.label.expand(z.shape[0], -1)], dim=1)
        return self.model.main(x[:, :, None, None])

    # named layers (the Layered capability): how many of `main`'s modules run to reach each.
    # linear0: the first layer's output, a linear map of z (where GANSpace's PCA reads, as
    # BigGAN's gen_z); block0: after its BatchNorm and ReLU; block1: the next one's.
    LAYERS = {"linear0": (1, (1024, 4, 4)), "block0": (3, (1024, 4, 4)), "block1": (7, (512, 8, 8))}

    def layers(self) -> dict[str, tuple[int, int, int]]:
        return {name: shape for name, (_, shape) in self.LAYERS.items()}

    def features(self, z: Tensor, layer: str) -> Tensor:
        if layer not in self.LAYERS:
            raise ValueError(f"unknown layer {layer!r}; choose from {', '.join(self.LAYERS)}")
        h = torch.cat([z.to(self.device, torch.float32), self.label.expand(z.shape[0], -1)], dim=1)[:, :, None, None]
        for module in self.model.main[: self.LAYERS[layer][0]]:
            h = module(h)
        return h

    def sefa_directions(self, n: int) -> Tensor:
        """SeFa on the first layer, a ConvTranspose2d on a 1x1 input (a linear map):
        W = weight[:100] reshaped to (1024*4*4, 100), the columns acting on z."""
        return sefa(self.z_weights()[0], n)

    def z_weights(self) -> list[Tensor]:
        """z enters the first layer only: its weight acting on z, (1024*4*4, 100). Declared, so
        compare shows SeFa's spectrum and its near-degenerate groups."""
        weight = self.model.main[0].weight[: self.z_dim]  # (100, 1024, 4, 4)
        return [weight.reshape(self.z_dim, -1).T.detach()]  # W: (16384, 100)

    def describe(self) -> dict:
        return {"model": self.name, "class_index": CLASSES.index(self.class_name), "class_name": self.class_name,
                "truncation": 1.0, "weights": ""}


def make(class_name: str = "blue", device: str | torch.device = "cpu") -> EyeGenerator:
    """The plug-in factory: `hpdirs learn --model omniart:make --model-arg class_name=green`
    (with this folder on PYTHONPATH), or registered by a package as an entry point:

        [project.entry-points."hpdirs.generators"]
        omniart-eye = "omniart:make"
    """
    if class_name not in CLASSES:
        raise ValueError(f"class_name must be one of {', '.join(CLASSES)}, got {class_name!r}")
    return EyeGenerator(class_name, str(device))
