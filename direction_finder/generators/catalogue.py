"""The names a user picks a generator by, and their defaults: the published BigGAN-deep models,
the known-truth kinds, the installed plug-ins. Light on purpose (no torch): `hpdirs models` and
every command's --help read it; the generators import their names from here."""

from __future__ import annotations

from importlib.metadata import entry_points

DEFAULT_MODEL = "biggan-deep-128"
DEFAULT_CLASS = "golden_retriever"
DEFAULT_TRUNCATION = 0.4
MODEL_NAMES: tuple[str, ...] = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")  # published weights

TRUTH_PREFIX = "truth-"
TRUTH_ABOUT = {  # the known-truth kinds, and what `hpdirs models` says of each
    "flat": "a flat first layer, SeFa and GANSpace blind",
    "aligned": "factors of distinct strengths, SeFa and GANSpace exact",
    "layers": "z in two layers, the factors in the deeper one",
    "shapes": "a shape's position, size, hue and rotation",
}
TRUTH_DEFAULTS = {"flat": (12, 12), "aligned": (12, 12), "layers": (12, 12), "shapes": (8, 5)}  # (z_dim, factors)

PLUGIN_GROUP = "hpdirs.generators"  # the entry-point group installed packages register generators in


def installed_plugins() -> dict[str, str]:
    """Generators registered by installed packages: name -> `module:factory`."""
    return {ep.name: ep.value for ep in entry_points(group=PLUGIN_GROUP)}
