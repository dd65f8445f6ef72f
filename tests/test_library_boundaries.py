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


def test_light_modules_do_not_import_tensorflow() -> None:
    """Importing these modules must not pull TensorFlow in (start-up speed of the dashboard)."""
    light = [
        "catdog",
        "catdog.home",
        "catdog.hosting",
        "catdog.images",
        "catdog.progress",
        "catdog.cli",
        "catdog.datasets",
        "catdog.importer",
        "catdog.archive",
        "catdog.download",
        "catdog.demo",
        "catdog.cartoon",
        "catdog.augment",
        "catdog.warp",
        "catdog.models",
        "catdog.config",
        "catdog.runs",
        "catdog.jobs",
        "catdog.evaluate",
        "catdog.predict",
        "catdog.explain",
    ]
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
        "from catdog import runs\n"
        "from catdog.config import TrainConfig\n"
        f"path = runs.create_run(TrainConfig(data={str(tiny_dataset)!r}, epochs=2))\n"
        "info = runs.run_info(path)\n"
        "print(info.state, info.epochs, ','.join(info.classes), 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["running", "2", "cats,dogs", "False"], out.stderr
    from catdog import runs

    (left,) = runs.list_runs()  # its process exited before training: listed as interrupted
    assert (left.model, left.state) == ("seed-baseline", "interrupted")
