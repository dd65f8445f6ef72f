"""Exports: each format written, reloaded by its own runtime, and checked against the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catdog.cli import main
from catdog.data.model_input import load_for_model
from catdog.inference.export import ExportError, export_run
from catdog.train import runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bfloat16 catdog-net run on 32-px stripes, trained until it is sure (its own home)."""
    from conftest import make_dataset

    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    root = tmp_path_factory.mktemp("export")
    data = make_dataset(root / "data", counts=(32, 8, 4), size=40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATDOG_HOME", str(root / "home"))
        config = TrainConfig(data=str(data), model="catdog-net", epochs=8, image_size=32,
                             batch_size=8, precision="bfloat16", augment=False,
                             time_limit_minutes=0, test=False)  # fmt: skip
        path = train(config).path
    return root / "home", path


@pytest.fixture
def run(trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CATDOG_HOME", str(trained[0]))
    return trained[1]


def _photo(run: Path) -> np.ndarray:
    info = runs.run_info(run)
    first = sorted((Path(info.data) / "validation" / info.classes[1]).iterdir())[0]
    return load_for_model(first, 32)[None].astype(np.float32)


@pytest.mark.slow
def test_keras_export_takes_raw_pixels_and_matches_the_run(run: Path, tmp_path: Path) -> None:
    from catdog.model.backend import keras

    result = export_run(run, "keras", tmp_path / "model.keras")
    assert result.path.is_file() and result.bytes == result.path.stat().st_size
    assert result.images == 16  # the run's 8 validation images per class
    # A bfloat16 run: its float32 export agrees to 3e-2 (an image near 0.5 may change class).
    assert result.max_difference <= result.tolerance == 3e-2 and result.agreement >= 0.8
    exported = keras.models.load_model(result.path, safe_mode=True)
    assert exported.get_layer("scale").scale == pytest.approx(1 / 255)
    assert all(layer.dtype_policy.name == "float32" for layer in exported.layers)
    original = runs.load_model(run).predict_on_batch(_photo(run) / 255)
    np.testing.assert_allclose(exported.predict_on_batch(_photo(run)), original, atol=3e-2)
    assert result.trust == tmp_path / "model.trust.json"  # the rule travels beside the model
    rule = json.loads(result.trust.read_text())
    assert rule["classes"] == ["cats", "dogs"] and rule["temperature"] > 0
    assert rule["rule"]["coverage"] == 0.95 and rule["views"] == {"tta": False, "tta_zoom": 0.0}
    assert 0 < rule["probability_rule"]["threshold"] <= 1
    assert (tmp_path / "model.trust.npz").exists() == (
        rule["rule"]["score"] in ("mahalanobis", "knn")
    )


@pytest.mark.slow
def test_savedmodel_and_tflite_exports_round_trip(run: Path, tmp_path: Path) -> None:
    from catdog.model.backend import tf

    saved = export_run(run, "savedmodel", tmp_path / "saved")
    assert (saved.path / "saved_model.pb").is_file() and saved.max_difference <= 3e-2
    loaded = tf.saved_model.load(str(saved.path))
    probabilities = loaded.serve(_photo(run)).numpy()
    assert probabilities.shape == (1, 1) and 0 <= probabilities[0, 0] <= 1

    lite = export_run(run, "tflite", tmp_path / "model.tflite")
    quantized = export_run(run, "tflite", tmp_path / "model-int8.tflite", quantize=True)
    assert lite.max_difference <= 3e-2 and quantized.agreement >= 0.9
    assert quantized.tolerance is None and quantized.bytes < lite.bytes / 2.5  # int8 weights
    assert "(quantized)" in quantized.summary() and "same class for" in quantized.summary()


@pytest.mark.slow
def test_bad_requests_are_refused_before_anything_is_written(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'onnx'; choose one of keras"):
        export_run(run, "onnx")
    with pytest.raises(ExportError, match="only the tflite format can be quantized"):
        export_run(run, "keras", quantize=True)
    with pytest.raises(ExportError, match=r"a Keras export is a \.keras file; got --out model\.h5"):
        export_run(run, "keras", tmp_path / "model.h5")
    existing = tmp_path / "taken.keras"
    existing.write_bytes(b"mine")
    with pytest.raises(ExportError, match=r"taken\.keras already exists; choose another --out"):
        export_run(run, "keras", existing)
    assert existing.read_bytes() == b"mine"


@pytest.mark.slow
def test_the_cli_exports_to_the_run_folder_and_prints_the_path(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", run.name[:15], "--format", "tflite", "--quantize"]) == 0
    out = capsys.readouterr()
    path = Path(out.out.strip().splitlines()[-1])
    assert path == run / "exports" / f"{run.name}-best-int8.tflite" and path.is_file()
    assert "tflite (quantized):" in out.err
    assert main(["export", run.name, "--format", "tflite", "--quantize"]) == 2  # exists now
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_the_readme_snippet_classifies_a_photo_without_catdog(run: Path, tmp_path: Path) -> None:
    """The README's lines, run as written (its file names pointed at real exports) in a fresh
    interpreter that never imports catdog: each format gives the same probability."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Take the model away") :]
    start = section.index("```python") + len("```python")
    snippet = section[start : section.index("```", start)]
    files = {
        "model.keras": export_run(run, "keras", tmp_path / "m.keras").path,
        "model_folder": export_run(run, "savedmodel", tmp_path / "saved").path,
        "model.tflite": export_run(run, "tflite", tmp_path / "m.tflite").path,
        "photo.jpg": sorted((Path(runs.run_info(run).data) / "validation" / "dogs").iterdir())[0],
    }
    for name, path in files.items():
        snippet = snippet.replace(f'"{name}"', repr(str(path)))
    snippet = snippet.replace("size = 112", "size = 32")
    lines = snippet.splitlines()
    probe = "\n".join(  # after each `p = ...` line, print p
        line + ("\nprint(float(np.asarray(p).ravel()[0]))" if line.startswith("p = ") or
                "; p = " in line else "")
        for line in lines
    )  # fmt: skip
    probe += "\nimport sys; assert 'catdog' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    values = [float(v) for v in done.stdout.split()]
    assert len(values) == 3 and max(values) - min(values) < 1e-4 and 0 <= values[0] <= 1
