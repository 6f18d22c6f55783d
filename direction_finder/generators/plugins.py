"""Any generator from the command line: a factory named `module.path:factory`, or registered by
an installed package under the entry-point group `hpdirs.generators` (name -> factory).

The factory is called with the `--model-arg key=value` pairs (and `device=` when it takes one)
and returns a Generator-protocol object. It is checked once on two seeded latents, so that a
mistake is one line naming it, not a traceback later. Its spec, arguments and output range are
recorded in every artifact. An installed plug-in is rebuilt from that record untold; a
`module:factory` only when the user names it again (`--model`): a file never chooses code.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from direction_finder.errors import HpdirsWarning, UsageError
from direction_finder.generators.base import (
    Checkpointable,
    ClassConditional,
    Described,
    Factorisable,
    Fingerprinted,
    KnownTruth,
    Layered,
    ZLayered,
    describe,
    resolve_device,
)
from direction_finder.generators.catalogue import installed_plugins

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # module.path:factory
MEMBERS = ("z_dim", "device", "sample_z", "__call__")
RANGE_SLACK = 1e-3  # outputs this far outside [-1, 1] still count as inside (rounding of a tanh)


def is_plugin(model: str | None) -> bool:
    """Whether a model name is a factory spec or an installed plug-in's name."""
    return model is not None and (bool(SPEC.match(model)) or model in installed_plugins())


def refuse_recorded_factory(recorded: str, source: str) -> None:
    """Stop before importing a `module:factory` that a file (not the user) names.

    A directions file or a run folder may come from anyone; importing what it names would let
    it run any code (`os:system`). Installed plug-ins are vouched for by the user's own
    installation; any other factory must be named again by the user, as `model`.
    """
    if SPEC.match(recorded) and recorded not in installed_plugins():
        raise UsageError(
            f"{source} was made with the plug-in generator {recorded}, and hpdirs never imports code "
            f"that a file names; if you trust that code, run the command again with `model` {recorded}"
        )


def parse_model_args(items: Iterable[str]) -> dict[str, Any]:
    """`key=value` pairs -> keyword arguments; a value that reads as JSON (numbers, true, lists)
    is taken as such, anything else as a string."""
    args: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"`model_args` {item!r} is not key=value (key a Python name)")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def parse_output_range(text: str | Iterable[float] | None) -> tuple[float, float] | None:
    """`0,1` or `0,255` (or a pair) -> (low, high) with low < high; None stays None."""
    if text is None:
        return None
    try:
        low, high = (float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise UsageError(f"`output_range` {text!r} is not two numbers low,high such as 0,1 or 0,255") from None
    if not low < high:
        raise UsageError(f"`output_range` {text!r} must have low < high")
    return low, high


def load_factory(model: str) -> Callable[..., Any]:
    """The factory a spec or an installed plug-in's name names."""
    spec = installed_plugins().get(model, model)
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"`model` {model}: cannot import {module_name} ({type(exc).__name__}: {first})") from None
    factory = getattr(module, attribute, None)
    if factory is None or not callable(factory):
        raise UsageError(f"`model` {model}: {module_name} has no callable {attribute!r}")
    return factory


def _capability_members() -> tuple[str, ...]:
    """The members that make up the capabilities (layers, sefa_directions, with_class, ...)."""
    names: list[str] = []
    for protocol in (Layered, Checkpointable, Factorisable, ZLayered, ClassConditional, KnownTruth, Fingerprinted):
        declared = [*getattr(protocol, "__annotations__", {}), *vars(protocol)]
        names += [n for n in declared if not n.startswith("_") and n not in names]
    return tuple(names)


CAPABILITY_MEMBERS = _capability_members()


class PluginGenerator:
    """A generator from a factory: maps its outputs into [-1, 1] when they come in another range,
    records how it was made, and passes every other capability of the object through.

    The capabilities the object has are copied onto the wrapper as attributes of its own: from
    Python 3.12 on, isinstance() against a runtime-checkable protocol looks members up with
    inspect.getattr_static, which never calls __getattr__, so a pass-through alone would hide
    them (`sefa_directions`, `layers`, ...) there."""

    def __init__(self, inner: Any, model: str, args: Mapping[str, Any], output_range: tuple[float, float] | None):
        self.inner, self.model, self.args, self.output_range = inner, model, dict(args), output_range
        self.z_dim, self.device = int(inner.z_dim), torch.device(inner.device)
        for name in CAPABILITY_MEMBERS:
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.inner.sample_z(n, generator)

    def __call__(self, z: Tensor) -> Tensor:
        images = self.inner(z)
        if self.output_range is None:
            return images
        low, high = self.output_range
        return (images - low) * (2.0 / (high - low)) - 1.0  # [low, high] -> [-1, 1]

    def describe(self) -> dict[str, Any]:
        about = describe(self.inner) if isinstance(self.inner, Described) else {}
        return {
            "class_index": about.get("class_index", -1), "class_name": about.get("class_name", ""),
            "truncation": about.get("truncation", 1.0), "weights": "", "model": self.model,
            "model_args": self.args, "output_range": list(self.output_range) if self.output_range else None,
        }  # fmt: skip

    def __getattr__(self, name: str) -> Any:  # layers, features, sefa_directions, ... of the object itself
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def load_plugin(
    model: str,
    args: Mapping[str, Any] | None = None,
    device: str | torch.device = "auto",
    output_range: tuple[float, float] | None = None,
) -> PluginGenerator:
    """Call the factory, then check what it returned on two seeded latents."""
    factory = load_factory(model)
    kwargs = dict(args or {})
    try:
        takes_device = "device" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_device = False
    if takes_device and "device" not in kwargs:
        kwargs["device"] = resolve_device(device)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise UsageError(f"`model` {model}: the factory does not take these `model_args` ({exc})") from None
    except ValueError:  # no signature to check against (a builtin): the call itself will say
        pass
    with _plugin_code(model, "the factory"):
        made = factory(**kwargs)
    missing = [m for m in MEMBERS if m != "__call__" and not hasattr(made, m)]
    missing += [] if callable(made) else ["__call__"]
    if missing:
        needs = "a generator needs z_dim, device, sample_z(n, generator) and __call__(z)"
        raise UsageError(
            f"`model` {model}: the factory returned a {type(made).__name__} without {', '.join(missing)}; {needs}"
        )
    z_dim = made.z_dim
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
        raise UsageError(f"`model` {model}: z_dim must be a positive int, got {z_dim!r}")
    with _plugin_code(model, "its device"):
        generator = PluginGenerator(made, model, kwargs_recorded(kwargs), output_range)
    _check_output(generator, model)
    return generator


@contextlib.contextmanager
def _plugin_code(model: str, what: str) -> Iterator[None]:
    """Run a plug-in's own code: whatever it raises, and a sys.exit, become one UsageError that
    names the plug-in, the call and the first line of the error. Ctrl-C stays an interruption."""
    try:
        yield
    except UsageError:
        raise
    except SystemExit as exc:
        raise UsageError(f"`model` {model}: {what} called sys.exit({exc.code!r}); fix the plug-in") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UsageError(f"`model` {model}: {what} raised {type(exc).__name__}: {first}") from exc


def kwargs_recorded(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The factory's arguments as recorded in artifacts (the device is chosen anew each time)."""
    return {k: v for k, v in kwargs.items() if k != "device"}


def _check_output(generator: PluginGenerator, model: str) -> None:
    with _plugin_code(model, "sample_z(2)"):
        z = generator.sample_z(2, torch.Generator().manual_seed(0))
    if not isinstance(z, Tensor) or tuple(z.shape) != (2, generator.z_dim):
        shape = str(tuple(z.shape)) if isinstance(z, Tensor) else type(z).__name__
        raise UsageError(f"`model` {model}: sample_z(2) must return a (2, {generator.z_dim}) tensor, got {shape}")
    with torch.no_grad(), _plugin_code(model, "the generator's forward"):
        y = generator(z)
    if not isinstance(y, Tensor) or y.dim() != 4 or y.shape[0] != 2 or not y.is_floating_point():
        shape = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, Tensor) else type(y).__name__
        raise UsageError(f"`model` {model}: the generator must return an (n, C, H, W) float tensor, got {shape}")
    low, high = float(y.min()), float(y.max())
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        hint = "0,255" if high > 2 else "0,1" if low >= -RANGE_SLACK else "LOW,HIGH"
        warnings.warn(f"`model` {model} outputs values in [{low:.3g}, {high:.3g}], outside [-1, 1]; images "
                      f"will be clipped: pass `output_range` {hint} if that is its range", HpdirsWarning,
                      stacklevel=3)  # fmt: skip
