"""The library stays UI-free and light to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
    folder = CATDOG.parent.joinpath(*package.split("."))
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    return [package] + [f"{package}.{name}" for name in names]


def test_light_modules_do_not_import_tensorflow() -> None:
    """Importing these modules must not pull TensorFlow in (start-up speed of the dashboard).

    The whole of ``catdog.data`` (every module found on disk, so a new one is covered too), and
    the modules the dashboard imports at start-up, which import TensorFlow only inside functions.
    """
    light = [
        "catdog",
        "catdog.hosting",
        "catdog.progress",
        "catdog.failures",
        "catdog.cli",
        *_modules("catdog.data"),
        "catdog.train.augment",
        "catdog.train.warp",
        "catdog.train.config",
        "catdog.train.precision",
        "catdog.train.runs",
        "catdog.train.jobs",
        "catdog.train.history",
        "catdog.train.job_status",
        "catdog.figures",
        "catdog.model.registry",
        "catdog.inference.evaluate",
        "catdog.inference.predict",
        "catdog.inference.explain",
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
