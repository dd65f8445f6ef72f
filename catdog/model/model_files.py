"""Model and weights files checked by their structure before Keras or h5py allocates anything.

A ``.keras`` file is a zip of ``config.json`` (the layers) and ``model.weights.h5`` (HDF5
datasets, one per tensor); a weights file is HDF5 alone. HDF5 lets a file *declare* a tensor
of any shape while storing none of its data: reading it hands back the declared size of fill
values, so a 10 kB file can ask for terabytes. Keras builds every layer the config declares
before it reads a weight. So, before either runs:

* the file must be a regular, non-empty file (a named pipe would block the loader);
* the zip must hold its parts, each of a sane declared size, with no entry that expands
  absurdly;
* every layer class must be one Keras or catdog defines, and no size a layer declares
  (units, filters, input sides) may be absurd;
* every HDF5 dataset's declared bytes (shape × dtype size) must be held in the file
  (uncompressed datasets: their stored bytes) and all of them together fit in memory.

Each failure is one :class:`ModelFileError` sentence naming the file.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zipfile
from pathlib import Path
from typing import IO, Any

from catdog.safe_files import FileProblem, check_regular, open_regular, os_words

# Every tensor of a model together, declared: 2 GB is ten times VGG16 in float32.
MAX_MODEL_BYTES = 2 * 1024**3
# One size a layer declares (units, filters, an input side): catdog's biggest is 4096.
MAX_LAYER_SIZE = 65_536
MAX_CONFIG_BYTES = 16 * 1024**2  # config.json; catdog's are under 100 kB
MAX_ENTRIES = 100  # entries of a .keras zip: config, metadata, weights, a few assets
# HDF5 objects walked (groups and datasets): VGG16 has ~100, a big Keras model a few thousand.
MAX_HDF5_OBJECTS = 100_000
_SIZE_KEYS = ("units", "filters", "output_dim", "input_dim", "depth_multiplier", "kernel_size",
              "batch_shape", "input_shape", "shape", "target_shape", "dims")  # fmt: skip
_PARTS = ("config.json", "model.weights.h5")


class ModelFileError(ValueError):
    """A model or weights file that is not what it says; the message names it and the problem."""


def check_keras_file(path: str | Path, name: str | None = None) -> None:
    """Check a ``.keras`` file's structure (see the module docstring) without loading it.

    Raises:
        ModelFileError: one sentence: not a file, empty, not a zip, a missing part, an
            unknown layer class, a declared size no model has, or tensors absent or too big.
    """
    name = name or str(path)
    fd = _open(path, name)
    with os.fdopen(fd, "rb") as f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ModelFileError(f"{name} is not a Keras model file: it is not a zip archive "
                                 f"({exc})") from exc  # fmt: skip
        with zf:
            infos = {info.filename: info for info in zf.infolist()[: MAX_ENTRIES + 1]}
            if len(infos) > MAX_ENTRIES:
                raise ModelFileError(f"{name} holds more than {MAX_ENTRIES} entries; a Keras "
                                     "model file holds a few")  # fmt: skip
            _check_parts(infos, name, os.fstat(fd).st_size)
            config = _read_config(zf, infos["config.json"], name)
            check_layers(config, name)
            with zf.open(infos["model.weights.h5"]) as weights:
                check_hdf5(weights, name, infos["model.weights.h5"].file_size)


def check_weights_h5(path: str | Path, name: str | None = None) -> None:
    """Check an HDF5 weights file (``.h5``/``.weights.h5``) declares no tensor it does not
    hold and none too big, before h5py or Keras reads a value.

    Raises:
        ModelFileError: not a regular file, empty, not HDF5, or tensors absent or too big.
    """
    name = name or str(path)
    fd = _open(path, name)
    with os.fdopen(fd, "rb") as f:
        check_hdf5(f, name, os.fstat(fd).st_size)


def _open(path: str | Path, name: str) -> int:
    try:
        check_regular(path, name)
        return open_regular(path, name)
    except FileProblem as exc:
        raise ModelFileError(str(exc)) from exc
    except OSError as exc:
        raise ModelFileError(f"{name} cannot be read ({os_words(exc)})") from exc


def _check_parts(infos: dict[str, zipfile.ZipInfo], name: str, size: int) -> None:
    missing = [part for part in _PARTS if part not in infos]
    if missing:
        raise ModelFileError(f"{name} is not a whole Keras model file: it lacks "
                             f"{' and '.join(missing)}")  # fmt: skip
    declared = sum(info.file_size for info in infos.values())
    if declared > MAX_MODEL_BYTES + MAX_CONFIG_BYTES:
        raise ModelFileError(f"{name} declares {declared:,} bytes of contents, more than any "
                             f"model catdog loads ({MAX_MODEL_BYTES:,})")  # fmt: skip
    for info in infos.values():
        if info.file_size > 100 * max(info.compress_size, 1) and info.file_size > 1024**2:
            raise ModelFileError(f"{name}: its part {info.filename} would expand "
                                 f"{info.file_size / max(info.compress_size, 1):,.0f}×; this "
                                 "looks like a zip bomb")  # fmt: skip
    if declared > 100 * size + 1024**2:
        raise ModelFileError(f"{name} declares {declared:,} bytes in a {size:,}-byte file")


def _read_config(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> dict[str, Any]:
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{name}: its config.json is {info.file_size:,} bytes (the limit is "
                             f"{MAX_CONFIG_BYTES:,})")  # fmt: skip
    try:
        with zf.open(info) as part:
            config = json.loads(part.read(MAX_CONFIG_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{name}: its config.json cannot be read ({exc})") from exc
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"{name}: its config.json does not describe a Keras model")
    return config


def _objects(node: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Every serialized Keras object (a dict with ``class_name``) in a config, depth first."""
    if depth > 100:
        raise ModelFileError("the model's config.json nests deeper than any model")
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str):
            found.append(node)
        for value in node.values():
            found += _objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value, depth + 1)
    return found


def _known_class(obj: dict[str, Any]) -> bool:
    """Whether Keras (or catdog, registered) defines the object's class; nothing is imported.
    catdog's own classes are registered by :mod:`catdog.model.saving`, which calls this."""
    from catdog.model.backend import keras

    class_name, module = obj["class_name"], str(obj.get("module") or "")
    registered = obj.get("registered_name")
    if registered and keras.saving.get_registered_object(registered) is not None:
        return True
    if module == "builtins" or (class_name.startswith("__") and class_name.endswith("__")):
        return True  # Keras' own markers (__keras_tensor__); safe mode refuses __lambda__ code
    if not module.startswith("keras"):
        return keras.saving.get_registered_object(class_name) is not None
    loaded = sys.modules.get(module) or sys.modules.get(module.replace("keras.", "keras.src.", 1))
    public = [loaded, keras.layers, keras.models, keras.optimizers, keras.losses,
              keras.metrics, keras.initializers, keras.regularizers, keras.constraints,
              keras.activations, keras.dtype_policies, keras.optimizers.schedules]  # fmt: skip
    return any(hasattr(place, class_name) for place in public if place is not None)


def check_layers(config: dict[str, Any], name: str) -> None:
    """Refuse a config with a layer class nobody defines or a size no model has.

    Raises:
        ModelFileError: naming the class or the layer, key and size.
    """
    for obj in _objects(config):
        if not _known_class(obj):
            raise ModelFileError(
                f"{name} uses a layer or object class Keras and catdog do not define "
                f"({obj.get('module') or '?'}.{obj['class_name']}); it was made by other "
                "software, or is damaged"
            )
        settings = obj.get("config")
        if isinstance(settings, dict):
            _check_sizes(settings, f"{obj['class_name']} {settings.get('name', '')}".strip(), name)


def _check_sizes(settings: dict[str, Any], layer: str, name: str) -> None:
    build = settings.get("build_config")
    values = {**settings, **(build if isinstance(build, dict) else {})}
    for key in _SIZE_KEYS:
        value = values.get(key)
        sizes = value if isinstance(value, list) else [value]
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int):
                continue
            if not 0 <= size <= MAX_LAYER_SIZE:
                raise ModelFileError(
                    f"{name}: layer {layer} declares {key} {size:,}, beyond any model catdog "
                    f"loads (the limit is {MAX_LAYER_SIZE:,})"
                )


def check_hdf5(f: IO[bytes], name: str, size: int) -> None:
    """Walk an HDF5 file's datasets: each one's declared bytes held in the file, all of them
    within :data:`MAX_MODEL_BYTES`. Opening HDF5 reads its metadata only.

    Raises:
        ModelFileError: not HDF5, or a dataset absent, too big, or of an odd type.
    """
    import h5py

    try:
        with h5py.File(f, "r") as h5:
            found: list[tuple[str, Any]] = []
            h5.visititems(lambda key, obj: _collect(found, key, obj, name))
            _check_datasets(found, name, size)
    except ModelFileError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on damage
        raise ModelFileError(f"{name} is not a readable HDF5 weights file "
                             f"({type(exc).__name__}: {str(exc)[:160]})") from exc  # fmt: skip


def _collect(found: list[tuple[str, Any]], key: str, obj: Any, name: str) -> None:
    import h5py

    if len(found) > MAX_HDF5_OBJECTS:
        raise ModelFileError(f"{name} holds more than {MAX_HDF5_OBJECTS:,} HDF5 objects")
    if isinstance(obj, h5py.Dataset):
        found.append((key, obj))


def _check_datasets(found: list[tuple[str, Any]], name: str, size: int) -> None:
    total = 0
    for key, dataset in found:
        if dataset.dtype.kind not in "fiub" and dataset.shape != ():
            continue  # strings and attributes-as-datasets: small, never tensors Keras sizes
        declared = math.prod(dataset.shape) * dataset.dtype.itemsize
        total += declared
        stored = dataset.id.get_storage_size()
        if dataset.compression is None and declared > stored + 4096:
            raise ModelFileError(
                f"{name} declares a tensor {key} of shape {tuple(dataset.shape)} ({declared:,} "
                f"bytes) but holds {stored:,} bytes of it: the file is damaged or crafted"
            )
        if total > MAX_MODEL_BYTES or (dataset.compression is None and total > 2 * size + 4096):
            raise ModelFileError(
                f"{name} declares {total:,} bytes of tensors (at {key}), more than the file "
                f"holds ({size:,}) or any model catdog loads ({MAX_MODEL_BYTES:,})"
            )
