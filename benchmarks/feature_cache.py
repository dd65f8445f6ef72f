"""Fast feature extraction against the frozen base running every epoch, on the real photos.

    python benchmarks/feature_cache.py                    # mobilenet-v3-small, 3 epochs each
    python benchmarks/feature_cache.py --only vgg16       # slow: VGG16's base on a CPU

Trains each pretrained preset's head on the seed's 2000/1000 photos without augmentation and
without fine-tuning, twice with the same seed: on features its frozen base computed once (what
catdog does), then with the base running every epoch (``CATDOG_FEATURE_CACHE_MB=0``). The base
keeps random weights (speed does not depend on their values; no ImageNet download needed).
Reports seconds per epoch of each, the one-time feature computation, the speed-up over the
epochs run, and the largest difference between the two heads' weights (the same head, to float
rounding, is what makes the fast path a pure speed-up).

Writes ``benchmarks/results/feature_cache.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import DATA, RESULTS, machine, machine_line, merge_rows, train_logged

from catdog.train.presets import PRESETS, get_preset

PRESETS = [name for name, spec in PRESETS.items() if spec.backbone is not None]


def random_weights(model: str, folder: Path) -> Path:
    """A weights file of ``model``'s base at random weights (seed 0), as Keras saves one."""
    from catdog.model.backend import keras

    keras.utils.set_random_seed(0)
    shape = (32, 32, 3)
    if get_preset(model).backbone == "VGG16":
        base = keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
    else:
        base = keras.applications.MobileNetV3Small(
            include_top=False, weights=None, include_preprocessing=False, input_shape=shape
        )
    path = folder / f"{model}.weights.h5"
    base.save_weights(path)
    return path


def measure(model: str, epochs: int, weights: Path) -> dict:
    """Train the head both ways; one results row."""
    import numpy as np

    from catdog.train import features, runs

    settings = {"model": model, "epochs": epochs, "fine_tune_epochs": 0, "augment": False,
                "precision": "float32", "weights": str(weights), "test": False}  # fmt: skip
    fast = train_logged(f"{model} fast", **settings)
    os.environ[features.CACHE_MB_ENV] = "0"
    try:
        slow = train_logged(f"{model} slow", **settings)
    finally:
        del os.environ[features.CACHE_MB_ENV]
    per_epoch = {}
    for name, path in (("fast", fast), ("slow", slow)):
        per_epoch[name] = sum(r["seconds"] for r in runs.read_history(path)) / epochs
    extraction = runs.read_json(fast / runs.CONFIG_FILE)["feature_cache"]["seconds"]
    heads = [runs.load_model(path, which="last").get_layer("head_output").get_weights()
             for path in (fast, slow)]  # fmt: skip
    difference = max(float(np.abs(a - b).max()) for a, b in zip(*heads, strict=True))
    config = runs.read_json(fast / runs.CONFIG_FILE)["train"]
    return {
        "model": model,
        "image_size": config["image_size"],
        "batch_size": config["batch_size"],
        "epochs": epochs,
        "features_seconds": extraction,
        "fast_seconds_per_epoch": round(per_epoch["fast"], 2),
        "slow_seconds_per_epoch": round(per_epoch["slow"], 2),
        "speedup": round(per_epoch["slow"] * epochs / (per_epoch["fast"] * epochs + extraction), 1),
        "head_max_difference": difference,
    }


def markdown(rows: list[dict], info: dict[str, str]) -> list[str]:
    lines = [
        "| model | image size × batch | epochs | features, once | s/epoch, cached | "
        "s/epoch, base every epoch | speed-up | head difference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['image_size']} × {r['batch_size']} | {r['epochs']} | "
            f"{r['features_seconds']:.0f} s | {r['fast_seconds_per_epoch']:.1f} | "
            f"{r['slow_seconds_per_epoch']:.1f} | {r['speedup']}× | "
            f"{r['head_max_difference']:.1e} |"
        )
    return [*lines, "", machine_line(info)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=PRESETS, action="append")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"the real photos are not here: {DATA} does not exist", file=sys.stderr)
        return 2
    out = RESULTS / "feature_cache.json"
    info = machine()
    with tempfile.TemporaryDirectory() as folder:
        for model in args.only or ["mobilenet-v3-small"]:
            row = measure(model, args.epochs, random_weights(model, Path(folder)))
            rows = merge_rows(out, row | {"machine": info}, key=("model",))
    (RESULTS / "feature_cache.md").write_text("\n".join(markdown(rows, info)) + "\n")
    print((RESULTS / "feature_cache.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
