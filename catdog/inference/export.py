"""Taking a trained model away: Keras, TensorFlow SavedModel and TFLite files, each verified.

Every export takes raw RGB pixels (0–255, ``float32``, shape ``[N, size, size, 3]`` at the
run's input size) and returns class probabilities: the ×1/255 scaling the input pipeline does
is a layer inside the exported model, so a user's own code only resizes the photo. The model is
rebuilt from Keras' own layers in float32, whatever arithmetic the run trained in (the weights
are float32 either way), so every runtime can run it and none needs catdog.

Each file is verified right after it is written: reloaded by the runtime that will use it
(Keras, ``tf.saved_model.load``, the TFLite interpreter) and its predictions compared with the
run's own model on a few of the run's validation images. A file that fails is deleted, and the
error says why. catdog's own predictions may also average mirrored and zoomed views of each
photo (``tta``); an exported model scores the photo as given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catdog.data.paths import is_shared, workspace_dir
from catdog.failures import one_line
from catdog.policy import current_policy
from catdog.system import disk_full, megabytes
from catdog.train import runs

FORMATS = ("keras", "savedmodel", "tflite")
# The exports offered by name: label → (format, quantize).
EXPORT_CHOICES = {
    "Keras (.keras)": ("keras", False),
    "TensorFlow SavedModel (.zip)": ("savedmodel", False),
    "TFLite": ("tflite", False),
    "TFLite, quantized (~4× smaller)": ("tflite", True),
}
# Largest difference in a probability allowed between the run's model and a float export
# (float32 throughout: only the order of operations differs; bfloat16 runs differ more).
TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 1e-2}
# A dynamic-range quantized TFLite model must give the same class on this share of images.
MIN_AGREEMENT = 0.9
CHECK_IMAGES = 16


class ExportError(ValueError):
    """An export that cannot be made or did not pass its check; the message says why."""


@dataclass
class ExportResult:
    """What was written and how well it matches the run's own model."""

    path: Path
    format: str
    quantized: bool
    bytes: int
    images: int  # how many images the check compared
    max_difference: float  # largest |probability difference| against the run's model
    agreement: float  # share of images given the same class
    tolerance: float | None  # the bound max_difference had to meet (None: quantized)
    trust: Path | None = None  # the calibration and "not sure" rule written beside it

    def summary(self) -> str:
        """One line for the command line and the History page."""
        kind = f"{self.format}{' (quantized)' if self.quantized else ''}"
        return (
            f"{kind}: {current_policy().shown(self.path)} ({megabytes(self.bytes)}); on "
            f"{self.images} validation "
            f"images the same class for {self.agreement:.0%}, probabilities within "
            f"{self.max_difference:.2g} of the run's model"
            + (f"; calibration and 'not sure' rule in {self.trust.name}" if self.trust else "")
        )


def export_run(
    run: str | Path,
    fmt: str,
    out: str | Path | None = None,
    *,
    quantize: bool = False,
    which: str = "best",
    replace: bool = False,
) -> ExportResult:
    """Export a run's model to ``out`` (default: :func:`default_target`) and verify it.

    In hosted mode every export goes into the visitor's workspace (a shared example's too:
    nothing of a shared run is touched) and counts against its quota.

    Args:
        run: run id, unique id prefix or folder.
        fmt: ``keras`` (a ``.keras`` file), ``savedmodel`` (a folder) or ``tflite``.
        out: the file or folder to write; it must not exist yet.
        quantize: TFLite only: dynamic-range quantization (8-bit weights, ~4× smaller).
        which: the run's ``best`` or ``last`` model.
        replace: make the export again over an earlier one at ``out`` (otherwise refused).

    Raises:
        ExportError: an unknown format, ``quantize`` without TFLite, an existing target, or
            an export that failed its check (the file is then deleted).
        catdog.policy.HostedLimitError: in hosted mode, a read-only visitor, an ``out``
            outside the workspace, or an export the workspace's quota has no room for (the
            file is then deleted).
    """
    policy = current_policy()
    policy.check_writable(f"exporting run {run}")
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize and fmt != "tflite":
        raise ExportError("only the tflite format can be quantized")
    path = runs.resolve_run(run)
    target = Path(out) if out else default_target(path, fmt, quantize, which)
    policy.check_export_target(target)
    if fmt == "keras" and target.suffix != ".keras":
        raise ExportError(f"a Keras export is a .keras file; got --out {target.name}")
    if replace:
        _remove(target)
    if os.path.lexists(target):  # a link planted there too: never written through
        raise ExportError(
            f"{policy.shown(target)} already exists; choose another --out (nothing overwritten)"
        )
    model_path = runs.model_file(path, which)
    expected_bytes = model_path.stat().st_size if model_path is not None else 0
    policy.check_quota(expected_bytes, f"the export of run {path.name}")
    info = runs.run_info(path)
    precision = str(info.config.get("train", {}).get("precision") or "float32")
    model = runs.load_model(path, which=which)
    images = _check_images(info)
    expected = np.asarray(model.predict_on_batch(images / 255.0), dtype=np.float64)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = _write_checked(model, fmt, target, quantize, images)
    except ExportError as exc:
        raise ExportError(policy.shown(str(exc))) from None  # hosted: no server folder named
    try:
        with policy.disk_meter(f"exporting run {path.name}") as meter:
            meter.add(_size(target))  # written already: over the quota, it goes again
    except BaseException:
        _remove(target)
        raise
    result = _compare(target, fmt, quantize, expected, got, TOLERANCE.get(precision, 1e-4))
    if result is None:
        _remove(target)
        raise ExportError(_failure(fmt, quantize, expected, got, precision))
    result.trust = _write_trust(path, which, target, model.layers[-1].name)
    return result


def _write_trust(path: Path, which: str, target: Path, head: str) -> Path | None:
    """The run's calibration and "not sure" rule beside the export, learned for what the
    export scores (the photo as given, one view); ``None`` if the run has none."""
    from catdog.inference.predict import Predictor
    from catdog.inference.trust import write_export

    predictor = Predictor.from_run(path, which, tta=False)
    return None if predictor.trust is None else write_export(predictor.trust, target, head)


def _write_checked(
    model: Any, fmt: str, target: Path, quantize: bool, images: np.ndarray
) -> np.ndarray:
    """Write the export beside ``target``, run it on ``images``, then move it into place
    (never over anything, never through a link); returns what the export computed. Whatever
    fails (a full disk, TensorFlow's own errors), nothing is left and one sentence is raised.

    Raises:
        ExportError: the disk is full, or the export could not be written.
    """
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged = work / target.name
    try:
        _WRITERS[fmt](_with_scaling(_portable(model)), staged, quantize)
        got = _RUNNERS[fmt](staged, images)
        if os.path.lexists(target):
            raise ExportError(f"{target} appeared while exporting; nothing overwritten")
        os.rename(staged, target)  # within one folder: whole or not at all
        return got
    except ExportError:
        raise
    except Exception as exc:
        if disk_full(exc):
            raise ExportError(f"the disk holding {target.parent} is full: nothing was exported "
                              "and nothing is left behind; free some space and export again") \
                from exc  # fmt: skip
        raise ExportError(f"the export to {target} failed ({one_line(exc)}); nothing is left "
                          "behind") from exc  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def download(result: ExportResult) -> tuple[bytes, str]:
    """An export as one file to download: its bytes and a file name (a SavedModel folder
    is zipped, its folder at the top of the archive)."""
    if not result.path.is_dir():
        return result.path.read_bytes(), result.path.name
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(result.path.rglob("*")):
            if file.is_file():
                archive.write(file, Path(result.path.name) / file.relative_to(result.path))
    return buffer.getvalue(), f"{result.path.name}.zip"


def default_target(run_path: Path, fmt: str, quantize: bool, which: str = "best") -> Path:
    """Where an export goes when no ``out`` is given: the run's ``exports/`` folder, or for a
    shared example seen from a workspace, the workspace's ``exports/<run id>/`` (a shared run
    is read-only)."""
    name = f"{run_path.name}-{which}{'-int8' if quantize else ''}"
    suffix = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite"}[fmt]
    folder = run_path / "exports"
    if is_shared(run_path) and (workspace := workspace_dir()) is not None:
        folder = workspace / "exports" / run_path.name
    return folder / f"{name}{suffix}"


def _size(target: Path) -> int:
    """Bytes of an export: a file, or the files of a SavedModel folder."""
    if not target.is_dir():
        return target.stat().st_size
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())


def _portable(model: Any) -> Any:
    """The same network built from Keras' own layers only, in float32, with the run's weights.

    catdog's ``FusedBatchNorm`` becomes Keras' ``BatchNormalization`` (the same maths and
    weights: scale, offset, moving mean and variance), so an exported file loads with plain
    Keras, TensorFlow or TFLite, without catdog installed.
    """
    from catdog.model.backend import keras
    from catdog.model.catdognet import FusedBatchNorm

    def rebuild(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(
            layer, keras.layers.Layer
        ):  # not the bare operations (x + 3) some graphs hold
            config |= {"dtype": "float32"}
        if isinstance(layer, FusedBatchNorm):
            return keras.layers.BatchNormalization(
                momentum=layer.momentum, epsilon=layer.epsilon, name=layer.name, dtype="float32"
            )
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=rebuild)
    # A fresh, uncompiled model on the clone's graph: no optimizer (catdog's own) in the file.
    portable = keras.Model(clone.inputs, clone.outputs, name=model.name)
    portable.set_weights(model.get_weights())
    return portable


def _with_scaling(model: Any) -> Any:
    """``model`` behind a ×1/255 layer: raw 0–255 pixels in, probabilities out."""
    from catdog.model.backend import keras

    size = int(model.input_shape[1])
    pixels = keras.Input((size, size, 3), name="pixels")
    outputs = model(keras.layers.Rescaling(1 / 255, name="scale")(pixels))
    return keras.Model(pixels, outputs, name=f"{model.name}_export")


def _check_images(info: runs.RunInfo) -> np.ndarray:
    """Up to CHECK_IMAGES of the run's validation images (every class), as float pixels."""
    from catdog.data.datasets import list_images
    from catdog.data.images import ImageError
    from catdog.data.model_input import load_for_model

    size = int(info.config.get("train", {}).get("image_size") or 150)
    data = Path(str(info.data))
    per_class = max(1, CHECK_IMAGES // max(len(info.classes), 1))
    batch = []
    for cls in info.classes:
        try:
            files = list_images(data, "validation", cls)[:per_class]
        except (OSError, ValueError):
            files = []
        for file in files:
            try:
                batch.append(load_for_model(file, size))
            except ImageError:
                continue
    if not batch:  # the dataset has moved: check on reproducible noise instead
        rng = np.random.default_rng(0)
        batch = list(rng.integers(0, 256, (CHECK_IMAGES, size, size, 3), dtype=np.uint8))
    return np.stack(batch).astype(np.float32)


def _write_keras(model: Any, target: Path, quantize: bool) -> None:
    model.save(target)


def _write_savedmodel(model: Any, target: Path, quantize: bool) -> None:
    model.export(str(target), format="tf_saved_model", verbose=False)


def _write_tflite(model: Any, target: Path, quantize: bool) -> None:
    import tempfile

    from catdog.model.backend import tf

    with tempfile.TemporaryDirectory(prefix="catdog-export-") as folder:
        _write_savedmodel(model, Path(folder) / "model", False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(folder) / "model"))
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights
        target.write_bytes(converter.convert())


def _run_keras(target: Path, images: np.ndarray) -> np.ndarray:
    from catdog.model.saving import load_keras_model

    model = load_keras_model(target)
    return np.asarray(model.predict_on_batch(images), dtype=np.float64)


def _run_savedmodel(target: Path, images: np.ndarray) -> np.ndarray:
    from catdog.model.backend import tf

    loaded = tf.saved_model.load(str(target))  # kept alive: serve() reads its variables
    return np.asarray(loaded.serve(images), dtype=np.float64)


def _run_tflite(target: Path, images: np.ndarray) -> np.ndarray:
    import warnings

    from catdog.model.backend import tf

    with warnings.catch_warnings():  # TensorFlow's note that LiteRT will replace it
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(target))
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(sink["index"]), dtype=np.float64)


_WRITERS = {"keras": _write_keras, "savedmodel": _write_savedmodel, "tflite": _write_tflite}
_RUNNERS = {"keras": _run_keras, "savedmodel": _run_savedmodel, "tflite": _run_tflite}


def _labels(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.shape[-1] == 1:  # one sigmoid unit
        return (probabilities[:, 0] >= 0.5).astype(int)
    return probabilities.argmax(axis=-1)


def _compare(
    target: Path,
    fmt: str,
    quantize: bool,
    expected: np.ndarray,
    got: np.ndarray,
    tolerance: float,
) -> ExportResult | None:
    """The result if the export passes its check, else None."""
    if got.shape != expected.shape:
        return None
    difference = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    agreement = float(np.mean(_labels(got) == _labels(expected)))
    ok = agreement >= MIN_AGREEMENT if quantize else difference <= tolerance
    if not ok:
        return None
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) if target.is_dir() \
        else target.stat().st_size  # fmt: skip
    return ExportResult(target, fmt, quantize, size, len(expected), difference, agreement,
                        None if quantize else tolerance)  # fmt: skip


def _failure(fmt: str, quantize: bool, expected: np.ndarray, got: np.ndarray, prec: str) -> str:
    if got.shape != expected.shape:
        return f"the {fmt} export gives outputs of shape {got.shape}, not {expected.shape}"
    difference = float(np.max(np.abs(got - expected)))
    agreement = float(np.mean(_labels(got) == _labels(expected)))
    if quantize:
        return (f"the quantized tflite export gives the run's class for only {agreement:.0%} "
                f"of {len(expected)} images (at least {MIN_AGREEMENT:.0%} needed); it was "
                "deleted: export without --quantize")  # fmt: skip
    return (
        f"the {fmt} export differs from the run's {prec} model by up to {difference:.3g} "
        f"in a probability (at most {TOLERANCE.get(prec, 1e-4):g} allowed); it was deleted"
    )


def _remove(target: Path) -> None:
    """Remove an export and the trust files beside it."""
    from catdog.inference.trust import export_files

    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
    for beside in export_files(target):
        beside.unlink(missing_ok=True)
