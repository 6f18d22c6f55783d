"""The shape of the code: capabilities as protocols, one validation of settings, library errors in
library terms shown as flags by the CLI, and the layering rules the architecture note states."""

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from direction_finder.artifacts.runs import open_directions
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.evaluation.compare import CompareSettings
from direction_finder.generators import (
    ClassConditional,
    Described,
    Factorisable,
    Fingerprinted,
    Generator,
    GeneratorChoice,
    KnownTruth,
    Layered,
    class_slug,
    describe,
    load_biggan,
    sefa,
)
from direction_finder.generators.synthetic import SyntheticGenerator
from direction_finder.learning.runner import RunRequest, learn_run
from direction_finder.measuring.bench import BenchSettings
from direction_finder.outputs.render import RenderSettings
from direction_finder.validation import check_fields, integer, one_of, plain, positive, within
from hpdirs_cli.console import flags

ROOT = Path(__file__).resolve().parent.parent


def test_capabilities_are_seen_by_isinstance(tiny_biggan):
    synthetic = SyntheticGenerator(z_dim=8)
    for protocol in (Generator, Described, Layered, Factorisable, ClassConditional, Fingerprinted):
        assert isinstance(tiny_biggan, protocol), protocol.__name__
    assert not isinstance(tiny_biggan, KnownTruth)
    assert isinstance(synthetic, Generator) and isinstance(synthetic, Described) and isinstance(synthetic, KnownTruth)
    for protocol in (Layered, Factorisable, ClassConditional, Fingerprinted):
        assert not isinstance(synthetic, protocol), protocol.__name__

    class Plain:  # the bare Generator protocol and nothing else
        z_dim, device = 4, torch.device("cpu")

        def sample_z(self, n, generator=None):
            return torch.randn(n, 4, generator=generator)

        def __call__(self, z):
            return z[:, None, None, :].tanh()

    plain_generator = Plain()
    assert isinstance(plain_generator, Generator) and not isinstance(plain_generator, Described)
    assert describe(plain_generator)["model"] == "Plain" and class_slug(plain_generator) == "custom"
    assert class_slug(tiny_biggan) == "golden_retriever" and class_slug(synthetic) == "synthetic"


def test_with_class_gives_the_generator_load_biggan_gives_for_that_class(tiny_biggan, tiny_weights):
    other = tiny_biggan.with_class("tabby")
    fresh = load_biggan(class_="tabby", truncation=0.4, weights=tiny_weights, device="cpu")
    z = tiny_biggan.sample_z(2, torch.Generator().manual_seed(3))
    assert other.describe() == fresh.describe() and other.model is tiny_biggan.model
    assert torch.equal(other(z), fresh(z))  # the same weights, so bitwise the same images
    assert not torch.equal(other(z), tiny_biggan(z))


def test_sefa_is_the_top_right_singular_vectors_of_the_weight():
    weight = torch.randn(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    directions = sefa(weight, 3)  # (3, 6)
    _, values, vh = torch.linalg.svd(weight, full_matrices=False)  # independent: an SVD, not eigh
    assert values[0] > values[1] > values[2] > values[3]  # distinct, so the directions are unique up to sign
    cosines = (directions.double() @ vh[:3].T).abs()
    assert torch.allclose(cosines, torch.eye(3, dtype=torch.float64), atol=1e-6)
    largest = directions.gather(1, directions.abs().argmax(dim=1, keepdim=True))
    assert bool((largest > 0).all())


@pytest.mark.parametrize("check, value, message", [
    (lambda v: integer("batch_size", v, 1, 10), 0, "`batch_size` must be an integer from 1 to 10, got 0"),
    (lambda v: integer("batch_size", v, 1, 10), True, "must be an integer"),
    (lambda v: integer("batch_size", v, 1, 10), 2.0, "must be an integer"),
    (lambda v: positive("lr", v, 10.0), float("inf"), "`lr` must be a finite number > 0, got inf"),
    (lambda v: positive("lr", v, 10.0), 11, "`lr` must be at most 10, got 11"),
    (lambda v: within("fps", v, 0.01, 100.0), 0.0, "`fps` must be a number from 0.01 to 100, got 0.0"),
    (lambda v: one_of("init", v, ["random", "axes"]), "zeros", "`init` must be random or axes, got 'zeros'"),
])
def test_one_validation_with_one_wording(check, value, message):
    with pytest.raises(UsageError) as raised:
        check(value)
    assert message in str(raised.value)


def test_every_settings_dataclass_checks_its_numbers_the_same_way():
    cases = [(LearnConfig, "batch_size"), (CompareSettings, "batch_size"), (RenderSettings, "batch_size"),
             (CompareSettings, "samples"), (RenderSettings, "samples"), (LearnConfig, "seed"), (CompareSettings, "seed")]
    for settings, name in cases:
        with pytest.raises(UsageError, match=f"`{name}` must be an integer from"):
            settings(**{name: -1})
    with pytest.raises(UsageError, match="every batch size must be >= 1"):
        BenchSettings(batch_sizes=[1, 0])

    @dataclasses.dataclass
    class Some:
        count: int | None = None

    check_fields(Some(), {"count": (1, 5)}, optional=["count"])  # None allowed where optional
    with pytest.raises(UsageError, match="`count` must be an integer from 1 to 5, got None"):
        check_fields(Some(), {"count": (1, 5)})


def test_the_cli_shows_library_setting_names_as_its_flags():
    assert flags("`batch_size` must be at most 4; choose another `out_dir`") == (
        "--batch-size must be at most 4; choose another --out")
    assert flags("pass `class_` and `formats`; run `hpdirs classes`") == "pass --class and --format; run `hpdirs classes`"
    assert plain("the file's `lr` must be a number") == "the file's lr must be a number"


def test_learn_run_starts_and_resumes_a_run_as_the_command_does(tmp_path):
    choice = GeneratorChoice(model="synthetic:z_dim=6,factors=2,size=4", device="cpu")
    seen = []
    plan = learn_run(RunRequest(choice, {"steps": 3, "eval_every": 0}, out_root=tmp_path, name="r"), on_start=seen.append)
    assert seen == [dataclasses.replace(plan, steps_done=None)] and plan.steps_done == 3  # announced, then done
    assert plan.run_dir == tmp_path / "synthetic" / "r" and not plan.resumed
    assert plan.config.init == "random" and plan.config.lr == 0.01 and plan.config.num_directions == 6
    resumed = learn_run(RunRequest(GeneratorChoice(device="cpu"), {"steps": 5}, resume=plan.run_dir))
    assert resumed.resumed and resumed.config == dataclasses.replace(plan.config, steps=5)
    opened = open_directions(plan.run_dir, GeneratorChoice(device="cpu"))
    assert opened.directions.metadata["step"] == 5 and opened.output_dir("render") == plan.run_dir / "render"
    beside = open_directions(plan.run_dir / "directions.safetensors", GeneratorChoice(device="cpu"))
    assert beside.output_dir("compare") == plan.run_dir / "compare-directions"


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_library_never_imports_the_cli_toolkits():
    for path in _python_files("direction_finder"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("typer", "rich", "click", "hpdirs_cli"), f"{path}: {name}"


def test_no_capability_is_probed_by_name_outside_the_generators_package():
    generators = ROOT / "direction_finder" / "generators"
    for path in _python_files("direction_finder") + _python_files("cli"):
        if generators in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr"):
                probed = ast.unparse(node.args[0])
                assert "generator" not in probed and probed not in ("g", "G"), f"{path}:{node.lineno}: {probed}"


# The stages, bottom up: a module imports only from its own stage and the stages below it. The
# folders show the architecture; this keeps it true.
STAGES = [
    {"errors", "validation", "files", "exports"},
    {"method", "generators", "memory", "compiled"},
    {"config", "starts"},
    {"artifacts"},
    {"learning"},
    {"outputs"},
    {"evaluation", "explore"},
    {"measuring"},
]


def _library_imports() -> dict[str, set[str]]:
    """module -> the library modules it imports, wherever in the file (lazy imports count too)."""
    modules = {}
    for path in _python_files("direction_finder"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("direction_finder"):
                assert node.module is not None
                found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
                found |= {node.module} if node.module in modules else set()
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
        graph[name] = found - {name}
    return graph


def test_the_library_has_no_import_circle():
    graph = _library_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circle = path[path.index(target):] + [target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _stage(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package's own __init__: it re-exports from every stage
    return next(i for i, stage in enumerate(STAGES) if parts[1] in stage)


def test_every_module_imports_only_from_its_stage_and_below():
    for module, targets in _library_imports().items():
        own = _stage(module)
        if own is None:
            continue
        for target in targets:
            below = _stage(target)
            assert below is not None and below <= own, f"{module} (stage {own}) imports {target} (stage {below})"


def test_every_library_module_is_in_a_stage_and_in_the_architecture_note():
    note = (ROOT / "ARCHITECTURE.md").read_text()
    for path in _python_files("direction_finder"):
        relative = path.relative_to(ROOT / "direction_finder")
        if relative.name == "__init__.py" and relative.parent != Path("."):
            assert f"`{relative.parent}/`" in note, f"ARCHITECTURE.md has no line for {relative.parent}/"
        elif relative.name != "__init__.py":
            assert f"`{relative}`" in note, f"ARCHITECTURE.md has no line for {relative}"


LIGHT = ("torch", "numpy", "scipy", "PIL", "safetensors", "imageio")  # what makes a start-up slow


def test_the_command_line_and_its_help_import_no_torch():
    """--help, a command's --help, completion, classes, models and completion answer without
    importing torch (or numpy, scipy, Pillow): each run in a fresh interpreter, its modules listed."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['hpdirs'] + sys.argv[1:]\n"
        "try:\n"
        "    from hpdirs_cli.main import main\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('\\nLOADED', sorted(m for m in {LIGHT!r} if m in sys.modules))\n"
    )
    cases = [[], ["--help"], ["classes", "retriever"], ["models"], ["completion", "bash"], ["help"]]
    cases += [[command, "--help"] for command in
              ("learn", "render", "compare", "explore", "label", "info", "bench", "download", "classes", "doctor")]
    for args in cases:
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "100"})
        assert "LOADED []" in done.stdout, (args, done.stdout[-300:], done.stderr[-500:])
    completing = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
        env={**os.environ, "_HPDIRS_COMPLETE": "complete_bash", "COMP_WORDS": "hpdirs ren", "COMP_CWORD": "1"},
    )  # fmt: skip
    assert "render" in completing.stdout and "LOADED []" in completing.stdout, completing.stdout
    described = subprocess.run(  # zsh shows an option's help beside it: its summary line only
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
        env={**os.environ, "_HPDIRS_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "hpdirs learn --ini"},
    )  # fmt: skip
    assert '"--init":"How A starts\\\\: random, axes or a closed form."' in described.stdout, described.stdout


def test_importing_the_library_package_imports_nothing_heavy():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, direction_finder, direction_finder.generators, direction_finder.config, "
         "direction_finder.starts, direction_finder.outputs.formats; "
         f"print(sorted(m for m in {LIGHT!r} if m in sys.modules))"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_tests_are_grouped_like_the_stages():
    """tests/<stage folder>/ for a stage's modules, tests/config/ for config.py and starts.py,
    tests/cli/ for the command line, tests/docs/ for the documentation and the notebook; only the
    cross-cutting files stay at the top."""
    folders = {name for stage in STAGES for name in stage} - {"errors", "validation", "files", "starts"}
    allowed = folders | {"cli", "docs"}
    tests = ROOT / "tests"
    for path in tests.rglob("test_*.py"):
        where = path.parent.relative_to(tests)
        if where == Path("."):
            assert path.name in ("test_structure.py", "test_slow.py"), f"{path.name} belongs in a stage's folder"
        else:
            assert str(where) in allowed, f"tests/{where}/ is not a stage of the library"
    assert sorted(p.name for p in tests.iterdir() if p.suffix == ".py" and not p.name.startswith("test_")) == [
        "conftest.py", "helpers.py", "tolerances.py"]


def test_the_wheel_carries_the_license_pyproject_names(tmp_path):
    import tomllib
    import zipfile

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("hpdirs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
