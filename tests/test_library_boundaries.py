"""The library's architecture: its layers, UI-free, light to import, in files of one idea.

The layers, bottom up: ``catdog.data`` (photos on disk, no TensorFlow), ``catdog.model``
(networks), ``catdog.train`` (presets, training, runs), ``catdog.inference`` (predict, evaluate,
export); a package imports only the ones below it. The library never imports Streamlit or the
command line, and no file in it grows past 500 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CATDOG = Path(__file__).resolve().parents[1] / "catdog"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_streamlit() -> None:
    offenders = [p.name for p in CATDOG.rglob("*.py") if "streamlit" in _imported_modules(p)]
    assert offenders == [], f"catdog/ must not import streamlit: {offenders}"


def test_only_the_figures_module_imports_plotly() -> None:
    offenders = [
        str(p.relative_to(CATDOG))
        for p in CATDOG.rglob("*.py")
        if "plotly" in _imported_modules(p) and p != CATDOG / "figures.py"
    ]
    assert offenders == [], f"catdog/figures.py draws every figure: {offenders}"


def _modules(package: str) -> list[str]:
    """The package and every module under it (subpackages too), as found on disk."""
    folder = CATDOG.parent.joinpath(*package.split("."))
    found = [p.relative_to(CATDOG.parent).with_suffix("") for p in folder.rglob("*.py")]
    names = {".".join(p.parts[:-1] if p.name == "__init__" else p.parts) for p in found}
    return sorted(names | {package})


def _imported_names(path: Path) -> set[str]:
    """The ``catdog.*`` modules a file imports, anywhere in it (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("catdog"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("catdog"):
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


# package -> the packages it must never import
FORBIDDEN = {
    "catdog/data": ("catdog.model", "catdog.train", "catdog.inference"),
    "catdog/model": ("catdog.train", "catdog.inference"),
    "catdog/train": ("catdog.inference",),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_never_imports_the_layers_above_it(package: str) -> None:
    below = FORBIDDEN[package]
    offenders = sorted(
        f"{path.relative_to(CATDOG.parent)} imports {name}"
        for path in (CATDOG.parent / package).rglob("*.py")
        for name in _imported_names(path)
        if name.startswith(below)
    )
    assert offenders == [], f"{package} must not import {below}: {offenders}"


def test_the_library_never_imports_the_command_line() -> None:
    offenders = sorted(
        str(path.relative_to(CATDOG.parent))
        for path in CATDOG.rglob("*.py")
        if path != CATDOG / "__main__.py"
        and not path.is_relative_to(CATDOG / "cli")
        and any(n.startswith("catdog.cli") for n in _imported_names(path))
    )
    assert offenders == [], f"only python -m catdog runs the command line: {offenders}"


def test_no_library_file_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(CATDOG.parent)): n
        for path in CATDOG.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 500
    }
    assert long == {}, f"split these by the ideas they hold: {long}"


def test_light_modules_do_not_import_tensorflow() -> None:
    """Importing these modules must not pull TensorFlow in (start-up speed of the dashboard).

    The whole of ``catdog.data`` (every module found on disk, so a new one is covered too), and
    the modules the dashboard imports at start-up, which import TensorFlow only inside functions.
    """
    light = [
        "catdog",
        "catdog.policy",
        "catdog.limits",
        "catdog.quota",
        "catdog.slots",
        "catdog.workspaces",
        "catdog.progress",
        "catdog.failures",
        *_modules("catdog.cli"),
        *_modules("catdog.data"),
        "catdog.train.augment",
        "catdog.train.warp",
        "catdog.train.budget",
        "catdog.train.presets",
        "catdog.train.input_size",
        "catdog.system",
        "catdog.train.config",
        "catdog.train.distribute",
        "catdog.train.precision",
        "catdog.train.runs",
        "catdog.jobs",
        "catdog.job_snapshot",
        "catdog.train.history",
        "catdog.job_status",
        "catdog.figures",
        "catdog.model.registry",
        "catdog.model.backbones",
        "catdog.model.weights",
        "catdog.inference.evaluate",
        "catdog.inference.predict",
        "catdog.inference.explain",
        "catdog.inference.trust",
        "catdog.inference.calibration",
        "catdog.inference.curves",
    ]
    assert "catdog.data.images" in light
    code = (
        "import importlib, sys\n"
        f"for m in {light!r}:\n"
        "    importlib.import_module(m)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def test_a_run_is_on_disk_before_tensorflow_loads(tiny_dataset: Path) -> None:
    """The dashboard lists (and a refresh finds) a run the moment it is asked for."""
    code = (
        "import sys\n"
        "from catdog.train import runs\n"
        "from catdog.train.config import TrainConfig\n"
        f"path = runs.create_run(TrainConfig(data={str(tiny_dataset)!r}, epochs=2))\n"
        "info = runs.run_info(path)\n"
        "print(info.state, info.epochs, ','.join(info.classes), 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["running", "2", "cats,dogs", "False"], out.stderr
    from catdog.train import runs

    (left,) = runs.list_runs()  # its process exited before training: listed as interrupted
    assert (left.model, left.state) == ("seed-baseline", "interrupted")


def _module_name(path: Path) -> str:
    parts = path.relative_to(CATDOG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _catdog_imports(path: Path, modules: set[str]) -> set[str]:
    """The catdog modules ``path`` imports, at module level or inside functions alike."""
    name = _module_name(path)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..a import b
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    return {m for m in found if m in modules and m != name}


def _import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None if there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            if cycle := visit(imported, [*path, module]):
                return cycle
        done.add(module)
        return None

    return next(filter(None, (visit(m, []) for m in sorted(graph))), None)


def _import_graph() -> dict[str, set[str]]:
    paths = sorted(CATDOG.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _catdog_imports(p, modules) for p in paths}


def test_catdog_modules_import_each_other_without_cycles() -> None:
    """Each module builds on the ones below it: no two import each other, even inside a
    function (where a cycle hides until the function runs)."""
    graph = _import_graph()
    assert "catdog.model.registry" in graph["catdog.train.config"]  # the graph sees imports
    cycle = _import_cycle(graph)
    assert cycle is None, f"catdog modules import each other in a cycle: {' → '.join(cycle)}"


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
    ],
)
def test_the_cycle_finder_names_the_modules_of_a_cycle(
    graph: dict[str, set[str]], cycle: list[str] | None
) -> None:
    assert _import_cycle(graph) == cycle


ROOT = CATDOG.parent


def _code_files() -> list[Path]:
    """Every Python file of the product: the library, the pages and the entry point."""
    return [*CATDOG.rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]


def test_only_the_policy_module_reads_the_hosted_switch() -> None:
    """Hosted mode is one policy: everything else asks ``current_policy()``, never the
    ``CATDOG_HOSTED`` variable or a ``hosted()`` function of its own."""
    policy = CATDOG / "policy.py"
    offenders = []
    for path in _code_files():
        if path == policy:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            switch = isinstance(node, ast.Constant) and node.value == "CATDOG_HOSTED"
            call = isinstance(node, ast.Call) and (
                getattr(node.func, "id", None) == "hosted"
                or getattr(node.func, "attr", None) in ("hosted", "_switch")
            )
            if switch or call:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], f"only catdog/policy.py reads the hosted switch: {offenders}"


def test_git_grep_finds_hosted_calls_only_in_the_policy_and_its_tests() -> None:
    done = subprocess.run(
        ["git", "grep", "-n", "hosted()", "--", "*.py"], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode not in (0, 1):
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    files = {line.split(":", 1)[0] for line in done.stdout.splitlines()}
    assert {f for f in files if f != "catdog/policy.py" and not f.startswith("tests/")} == set()
