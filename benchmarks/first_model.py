"""Time and clicks from opening the app to a trained model's first prediction, in a browser.

    python benchmarks/first_model.py                          # 1 and 2 CPUs, both recipes
    python benchmarks/first_model.py --cpus 0 --recipes scratch

A new user's journey (``tests/journey.py``, the browser test's own) in headless Chromium
against ``streamlit run app.py`` pinned with ``taskset -c`` to one CPU (``0``) or two
(``0,1``), on a fresh data home: open the app, make a dataset on the Dataset page's New
dataset tab from 20 photos per class of the seed's training photos (uploaded from
``../shared``, never copied into the repository), name the classes, Create dataset; start the
recipe the Train page recommends; follow "Try it on the Predict page" as soon as the first
epoch is saved and upload one validation photo. Two recipes:

* ``scratch``: no pretrained weights anywhere (an empty Keras cache): the small from-scratch
  recipe;
* ``pretrained``: a MobileNetV3Small weights file in Keras' cache, built here with random
  weights in the format and under the name of the ImageNet file (its speed does not depend
  on the values; its accuracy does: the accuracy shown is meaningless, real weights are needed
  for that): the pretrained base with fast feature extraction.

Counts every click a person makes (a file dialog is one per class; a field typed into is one).
Writes ``benchmarks/results/first_model.{json,md}``; each row says the load average it ran at.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import DATA, RESULTS, machine, machine_line, merge_rows
from journey import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Journey, serve

TARGETS = {"scratch": 90.0, "pretrained": 30.0}  # seconds from the Train click; ≤ 12 clicks


def fake_imagenet_weights(keras_home: Path) -> Path:
    """A MobileNetV3Small weights file with random values, in the format and under the name
    Keras downloads its ImageNet weights as, in ``keras_home/models``."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from catdog.model.backbones import BACKBONES
    from catdog.model.backend import keras

    path = keras_home / "models" / BACKBONES["MobileNetV3Small"].file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, include_preprocessing=False, input_shape=(224, 224, 3)
    )
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, base)
    return path


def photos(per_class: int) -> dict[str, list[Path]]:
    """The first ``per_class`` training photos of each class, in file-number order."""

    def number(path: Path) -> int:
        return int(path.stem.split(".")[-1])

    return {cls: sorted((DATA / "train" / cls).glob("*.jpg"), key=number)[:per_class]
            for cls in ("cats", "dogs")}  # fmt: skip


def one_journey(recipe: str, cpus: str, per_class: int) -> dict:
    """Run the journey once on a fresh server; one results row."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="first-model-"))
    home, keras_home = work / "home", work / "keras"
    home.mkdir()
    if recipe == "pretrained":
        fake_imagenet_weights(keras_home)
    load = os.getloadavg()[0]
    with serve(home, cpus=cpus, KERAS_HOME=str(keras_home)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        trip = Journey(browser.new_context(viewport=VIEWPORT).new_page(), url)
        try:
            trip.open()
            trip.new_dataset(photos(per_class))
            said = trip.train()
            first = trip.page.get_by_text("A first model is ready").first.inner_text()
            text = trip.predict(DATA / "validation" / "cats" / "cat.1000.jpg", classes=2)
            assert not trip.errors(), trip.errors()
        finally:
            trip.page.screenshot(path=str(work / "last.png"))
            browser.close()
    return {
        "recipe": recipe,
        "cpus": cpus,
        "photos_per_class": per_class,
        "train_to_prediction_s": round(trip.seconds("train", "prediction"), 1),
        "train_to_first_model_s": round(trip.seconds("train", "first model"), 1),
        "open_to_prediction_s": round(trip.seconds("open", "prediction"), 1),
        "clicks": trip.clicks,
        "recommended": (re.search(r"Recommended: ([\w-]+)", said) or [None, "?"])[1],
        "first_model": first,
        "prediction": next((line for line in text.splitlines() if line.startswith("cats:")), ""),
        "load_average": round(load, 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def table(rows: list[dict], info: dict) -> list[str]:
    lines = [
        "# First model: opening the app to a first prediction, in a browser",
        "",
        "| recipe | CPUs | Train click → first prediction | → first model | open → prediction "
        "| clicks | recommended | load average | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["recipe"], r["cpus"])):
        target = TARGETS[r["recipe"]]
        lines.append(
            f"| {r['recipe']} | {r['cpus']} | {r['train_to_prediction_s']} s (target ≤ "
            f"{target:.0f}) | {r['train_to_first_model_s']} s | {r['open_to_prediction_s']} s | "
            f"{r['clicks']} (≤ 12) | {r['recommended']} | {r['load_average']} | {r['date']} |"
        )
    lines += ["", f"{rows[0]['photos_per_class']} photos per class. The pretrained recipe's "
              "weights are random (built locally): its speed is the real one, its accuracy is "
              "meaningless without the ImageNet file. " + machine_line(info)]  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", nargs="+", default=["0", "0,1"], help="taskset -c lists")
    parser.add_argument("--recipes", nargs="+", default=["scratch", "pretrained"],
                        choices=sorted(TARGETS))  # fmt: skip
    parser.add_argument("--photos", type=int, default=20, help="photos per class")
    args = parser.parse_args()
    rows = []
    for recipe in args.recipes:
        for cpus in args.cpus:
            row = one_journey(recipe, cpus, args.photos)
            print(row, flush=True)
            rows = merge_rows(RESULTS / "first_model.json", row, ("recipe", "cpus"))
    lines = table(rows, machine())
    (RESULTS / "first_model.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
