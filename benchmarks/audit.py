"""The data audit on the seed's photos: planted problems found, and what the split holds.

1. The seed's split as it is (its 4000 photos): the audit's time, its near-duplicates (within
   and across splits), suspect labels and odd images.
2. A copy of it in a temporary folder (never in the repository) with planted problems: 50
   near-duplicates of training photos added to validation and test (each resized ×0.5–1.5,
   cropped by up to 10% a side at a random place, mirrored half the time, re-compressed at
   JPEG quality 40–80), and 5% of the training labels flipped (100 photos moved to the other
   class). Recall and precision of each finder: planted pairs found (target ≥ 95%) and false
   pairs among those found (≤ 5%; pairs the audit already found in the seed's split are not
   counted as false); flipped labels among the top 2 × 100 suspects of the training split
   (target ≥ 70%; the audit ranks each split's suspects on its own, and the flips are all
   in training), and, for comparison, among the top 200 of all splits ranked together.
3. The perceptual hashes alone, catdog's own pHash against the imagehash package's pHash and
   dHash (if installed: ``pip install imagehash``): the distance that catches 95% of the
   planted copies, and how many distinct pairs of photos lie that close.

    python benchmarks/audit.py          # about 3-5 min on 2 cores
    python benchmarks/audit.py --features pretrained   # the label check on MobileNetV3Small's
                                        # features (needs its weights in Keras' cache)
    python benchmarks/audit.py --run-minutes 15        # the label check on the features of a
                                        # catdog-net run trained on the planted copy, flipped
                                        # labels and all, for at most 15 minutes (part 2 only)
    python benchmarks/audit.py --cross-fit 54          # the label check by 3 catdog-net
                                        # networks trained across folds, 54 min in all (part 2)

Writes benchmarks/results/audit.json and prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import DATA, ROOT, catdog_cli

from catdog.data import fingerprints
from catdog.data.health import audit_dataset
from catdog.data.images import open_rgb

RESULTS = ROOT / "benchmarks" / "results"
COPIES, FLIP_SHARE = 50, 0.05


def near_copy(path: Path, rng: random.Random) -> Image.Image:
    """A planted near-duplicate of a photo (see the module docstring)."""
    image = open_rgb(path)
    w, h = image.size
    cw, ch = int(w * rng.uniform(0.9, 1.0)), int(h * rng.uniform(0.9, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    image = image.crop((x, y, x + cw, y + ch))
    scale = rng.uniform(0.5, 1.5)
    image = image.resize((max(8, int(cw * scale)), max(8, int(ch * scale))), Image.BICUBIC)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(40, 80))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def plant(root: Path, seed: int = 0) -> tuple[set[frozenset[str]], set[str]]:
    """Plant the copies and flips in the copied dataset; returns (pairs, flipped files)."""
    rng = random.Random(seed)
    train = sorted((root / "train").glob("*/*.jpg"))
    pairs = set()
    for k, source in enumerate(rng.sample(train, COPIES)):
        cls, split = source.parent.name, ("validation", "test")[k % 2]
        name = f"{split}/{cls}/planted-{k}.jpg"
        near_copy(source, rng).save(root / name, quality=90)
        pairs.add(frozenset((f"train/{cls}/{source.name}", name)))
    copied = {f for pair in pairs for f in pair}
    candidates = [p for p in train if f"train/{p.parent.name}/{p.name}" not in copied]
    flipped = set()
    for path in rng.sample(candidates, round(FLIP_SHARE * len(train))):
        other = "dogs" if path.parent.name == "cats" else "cats"
        path.rename(root / "train" / other / f"flipped-{path.name}")
        flipped.add(f"train/{other}/flipped-{path.name}")
    return pairs, flipped


def timed_audit(root: Path, features: object = None) -> tuple[object, float]:
    started = time.perf_counter()
    report = audit_dataset(root, refresh=True, label_features=features)
    return report, time.perf_counter() - started


def _distance(plain: dict, mirrored: dict, a: str, b: str) -> int:
    """Bits apart of two hashes, or of ``a``'s and ``b``'s mirror image if that is closer."""
    d = int((plain[a] != plain[b]).sum())
    return min(d, int((plain[a] != mirrored[b]).sum())) if b in mirrored else d


def hash_comparison(root: Path, pairs: set[frozenset[str]], seed: int = 0) -> dict:
    """Distances of planted pairs and of random distinct pairs, per hasher."""
    try:
        import imagehash
    except ImportError:
        imagehash = None
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/*.jpg"))
    images = {f: open_rgb(root / f, min_side=64) for f in files}
    own = lambda im: fingerprints.phash(fingerprints.grey_square(im))  # noqa: E731
    hashers = {"catdog pHash (63 bits)": own}
    if imagehash is not None:
        hashers["imagehash.phash (64 bits)"] = lambda im: imagehash.phash(im).hash.ravel()
        hashers["imagehash.dhash (64 bits)"] = lambda im: imagehash.dhash(im).hash.ravel()
    rng = random.Random(seed)
    planted = {f for pair in pairs for f in pair}
    originals = [f for f in files if f not in planted]
    distinct = [tuple(rng.sample(originals, 2)) for _ in range(20_000)]
    out = {}
    for name, hasher in hashers.items():
        started = time.perf_counter()
        plain = {f: np.asarray(hasher(im)) for f, im in images.items()}
        seconds = time.perf_counter() - started
        mirrored = {f: np.asarray(hasher(ImageOps.mirror(images[f]))) for f in planted}

        planted_d = sorted(_distance(plain, mirrored, *sorted(pair)) for pair in pairs)
        threshold = planted_d[int(np.ceil(0.95 * len(planted_d))) - 1]
        close = sum(_distance(plain, mirrored, a, b) <= threshold for a, b in distinct)
        close /= len(distinct)
        out[name] = {
            "distance catching 95% of planted": threshold,
            "largest planted distance": planted_d[-1],
            "distinct pairs that close": close,
            "ms per image": 1000 * seconds / len(images),
        }
    return out


def train_on(root: Path, minutes: float) -> str:
    """Train catdog-net on the planted copy (its flipped labels and all) for at most
    ``minutes``, through catdog's command line; the run's id."""
    home = Path(os.environ["CATDOG_HOME"])
    return catdog_cli(home, "train", "--data", str(root), "--model", "catdog-net", "--minutes",
                      str(minutes), "--no-test", timeout=60 * minutes + 900)  # fmt: skip


def seed_part(features: object) -> dict:
    """Part 1: the seed's split as it is."""
    report, seconds = timed_audit(DATA, features)
    return {
        "images": report.images,
        "seconds": round(seconds, 1),
        "pairs": report.pairs,
        "leaks": report.leaks,
        "suspects": len(report.suspects),
        "top suspects": report.suspects[:10],
        "agreement": report.agreement,
        "odd": report.odd,
    }


def planted_part(
    root: Path, features: object, seed_pairs: set, run_minutes: float
) -> tuple[dict, set[frozenset[str]]]:
    """Part 2: the planted copy in ``root``; its results and the planted pairs."""
    pairs, flipped = plant(root)
    trained = {}
    if run_minutes:
        from catdog.inference.audit_features import run_features

        started = time.perf_counter()
        run_id = train_on(root, run_minutes)
        trained = {"run": run_id, "training_s": round(time.perf_counter() - started)}
        features = run_features(run_id)
    report, seconds = timed_audit(root, features)
    found = {frozenset((p["a"], p["b"])) for p in report.pairs}
    false = found - pairs - seed_pairs
    top = {s["file"] for s in report.in_split("train")[: 2 * len(flipped)]}
    together = sorted(report.suspects, key=lambda s: s["margin"])[: 2 * len(flipped)]
    return {
        **trained,
        "label_model": report.label_model,
        "images": report.images,
        "seconds": round(seconds, 1),
        "near-duplicates found": len(found & pairs) / len(pairs),
        "false pairs": len(false) / max(1, len(found)),
        "false pair list": sorted(map(sorted, false)),
        "leaks": report.leaks,
        "flipped among top 2x suspects": len(top & flipped) / len(flipped),
        "suspects per split": {k: len(report.in_split(k)) for k in ("train", "validation", "test")},
        "same, every split's suspects ranked together": len({s["file"] for s in together} & flipped)
        / len(flipped),
        "agreement": report.agreement,
    }, pairs


def kept(minutes: float) -> object:
    """The cross-fitted label check, its probabilities also saved (with each file's
    ``split/class/name``; flipped files are named ``flipped-*``) in
    ``results/audit-cross-fit-probabilities.npz``, to try other rankings without training."""
    from catdog.data.health import LabelFeatures
    from catdog.inference.cross_fit import cross_fitted

    judge = cross_fitted(minutes)

    def extract(paths: list[Path], tick: object) -> np.ndarray:
        rows = judge.extract(paths, tick)
        RESULTS.mkdir(exist_ok=True)
        np.savez_compressed(RESULTS / "audit-cross-fit-probabilities.npz", probabilities=rows,
                            files=np.array(["/".join(p.parts[-3:]) for p in paths]))  # fmt: skip
        return rows

    return LabelFeatures(judge.name, extract, probabilities=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", choices=("quick", "pretrained"), default="quick")
    parser.add_argument(
        "--run-minutes",
        type=float,
        default=0.0,
        help="check labels with a catdog-net run trained on the planted copy",
    )
    parser.add_argument(
        "--cross-fit",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="check labels with catdog-net networks trained across folds, MINUTES in all",
    )
    args = parser.parse_args()
    os.environ.setdefault("CATDOG_HOME", tempfile.mkdtemp(prefix="catdog-audit-home-"))
    features = None
    if args.features == "pretrained":
        from catdog.inference.audit_features import pretrained_features

        features = pretrained_features()
        if features is None:
            sys.exit("not measured: MobileNetV3Small's weights are not in Keras' cache")
    results: dict = {"cpu_count": os.cpu_count(), "load": os.getloadavg()}
    if args.cross_fit:
        features = kept(args.cross_fit)
    results["label_model"] = "quick" if features is None else features.name
    planted_only = bool(args.run_minutes or args.cross_fit)
    seed_pairs: set = set()
    if not planted_only:
        results["seed"] = seed_part(features)
        seed_pairs = {frozenset((p["a"], p["b"])) for p in results["seed"]["pairs"]}
    with tempfile.TemporaryDirectory(prefix="catdog-audit-") as tmp:
        root = Path(tmp) / "planted"
        shutil.copytree(DATA, root)
        results["planted"], pairs = planted_part(root, features, seed_pairs, args.run_minutes)
        if not planted_only:
            results["hashes"] = hash_comparison(root, pairs)
    RESULTS.mkdir(exist_ok=True)
    name = "audit.json" if features is None else "audit-pretrained.json"
    name = "audit-run.json" if args.run_minutes else name
    name = "audit-cross-fit.json" if args.cross_fit else name
    (RESULTS / name).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "seed"}, indent=1, default=str))
    if seed := results.get("seed"):
        print(f"seed: {seed['images']} images in {seed['seconds']} s; pairs "
              f"{len(seed['pairs'])}, leaks {seed['leaks']}, suspects {seed['suspects']} "
              f"(agreement {seed['agreement']}), odd {len(seed['odd'])}")  # fmt: skip


if __name__ == "__main__":
    main()
