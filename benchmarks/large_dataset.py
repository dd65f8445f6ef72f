"""Datasets bigger than memory: peak memory of a streamed training, and streaming's speed.

    python benchmarks/large_dataset.py                         # 100,000 images (hours; ~5 GB)
    python benchmarks/large_dataset.py --images 2000 --steps 20   # a quick check (a few min)
    python benchmarks/large_dataset.py --throughput            # streamed vs in memory, 2000 photos

**Memory** (the default): generates ``--images`` pictures of 256 px (random ellipses for
"cats", random polygons for "dogs", on random gradients, as JPEG; 90% train, 5% validation, 5%
test) into ``--folder`` (default: ``<temp>/catdog-large-<N>``; reused if complete, never inside
the repository), then trains ``--model`` (catdog-net) for ``--steps`` steps of one epoch on it in
a fresh process with its own data home, the memory budget set to ``--budget-mb`` (256 MB, or a
quarter of the decoded images if that is less) so the streamed path is taken (the run's
``config.json`` must say so). That process's resident memory
is sampled every 0.2 s while it decodes into the disk cache and while it trains, and its peak
(``VmHWM``) read at the end; the decoded size the in-memory path would hold is printed beside
it. Writes ``results/large_dataset.{json,md}``.

**Throughput** (``--throughput``): on the seed's 2000 training photos
(``../shared/data/cats_vs_dogs_small``; skipped with a message if absent), the images per second
of the input pipeline alone (catdog-net's augmentation, batch 32, 112 px) and of
catdog-net's training step fed by it (``fit``, float32), in memory and streamed from the disk
cache, each in a fresh process (the cache written beforehand, in the streamed process, is not
timed). Writes ``results/large_dataset_throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import DATA, RESULTS, machine, machine_line, merge_rows, write_results  # noqa: E402

SIDE = 256
SPLIT_SHARES = (("train", 0.90), ("validation", 0.05), ("test", 0.05))
CLASSES = ("cats", "dogs")
COMPLETE = ".generated"  # written last into a generated folder: it holds all its images
WARMUP_STEPS = 5  # training steps left out of the speed (the first compiles)
PHASES = ("decoding", "compiling", "training")  # of the training process, for its memory


# ------------------------------------------------------------------------------ the pictures


def _picture(job: tuple[str, int]) -> None:
    """Draw and save one picture (``job``: its path and index; the index seeds everything)."""
    import numpy as np
    from PIL import Image, ImageDraw

    path, index = job
    rng = np.random.default_rng(index)
    kind = index % 2
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, SIDE)[:, None, None]
    if rng.random() < 0.5:
        ramp = ramp.transpose(1, 0, 2)
    pixels = start + (end - start) * ramp * np.ones((SIDE, SIDE, 1))
    pixels += rng.normal(0, 12, (SIDE, SIDE, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = rng.integers(0, SIDE, 2)
        r = int(rng.integers(16, 90))
        if kind == 0:  # ellipses
            w, h = r, int(r * rng.uniform(0.5, 1.5))
            draw.ellipse((x - w, y - h, x + w, y + h), fill=colour)
        else:  # polygons of 3 to 6 corners
            corners = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
            draw.polygon([(float(x + r * np.cos(a)), float(y + r * np.sin(a))) for a in angles],
                         fill=colour)  # fmt: skip
    image.save(path, "JPEG", quality=int(rng.integers(70, 95)))


def generate(folder: Path, images: int) -> Path:
    """Fill ``folder`` with ``images`` pictures in train/validation/test class folders (kept if
    a complete earlier generation of the same count is there)."""
    marker = folder / COMPLETE
    if marker.is_file() and marker.read_text().strip() == str(images):
        print(f"reusing {images:,} generated images in {folder}", flush=True)
        return folder
    if folder.resolve().is_relative_to(ROOT):
        sys.exit(f"{folder} is inside the repository; give a folder outside it with --folder")
    jobs, index = [], 0
    for split, share in SPLIT_SHARES:
        count = max(2, round(images * share))
        for cls in CLASSES:
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            cls = CLASSES[index % 2]
            jobs.append((str(folder / split / cls / f"{cls[:-1]}.{index}.jpg"), index))
            index += 1
    started = time.monotonic()
    with Pool(os.cpu_count() or 2) as pool:
        for done, _ in enumerate(pool.imap_unordered(_picture, jobs, chunksize=64), start=1):
            if done % 5000 == 0 or done == len(jobs):
                print(f"generated {done:,}/{len(jobs):,} images", flush=True)
    marker.write_text(f"{images}\n")
    print(f"generated {len(jobs):,} images in {time.monotonic() - started:.0f} s", flush=True)
    return folder


# ------------------------------------------------------------------------ memory while training


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _train_child(args: argparse.Namespace) -> None:
    """In a fresh process: train on the generated data, sampling memory per phase; prints one
    JSON line."""
    from catdog.train.config import TrainConfig
    from catdog.train.trainer import train

    phase, peaks, done = ["starting"], {}, threading.Event()
    times: dict[str, float] = {}
    batch_ends: list[float] = []

    def sample() -> None:
        while not done.wait(0.2):
            peaks[phase[0]] = max(peaks.get(phase[0], 0), _status_kb("VmRSS"))

    def on_event(event) -> None:
        name = {"loading": "decoding", "start": "compiling", "batch": "training"}.get(event.kind)
        if name and name != phase[0]:
            phase[0] = name
            times[name] = time.monotonic()
        if event.kind == "batch":
            batch_ends.append(time.monotonic())

    threading.Thread(target=sample, daemon=True).start()
    config = TrainConfig(data=str(args.data), model=args.model, epochs=1,
                         steps_per_epoch=args.steps, precision="float32", test=False)  # fmt: skip
    started = time.monotonic()
    result = train(config, on_event=on_event)
    done.set()
    recorded = json.loads((result.path / "config.json").read_text())
    timed = batch_ends[WARMUP_STEPS - 1 :]  # after the first steps (compiling)
    rate = (len(timed) - 1) * recorded["train"]["batch_size"] / (timed[-1] - timed[0])
    print(json.dumps({
        "state": result.state,
        "input": recorded["input"],
        "image_size": recorded["train"]["image_size"],
        "peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1),
        "peak_rss_mb_by_phase": {k: round(v / 1024, 1) for k, v in peaks.items()},
        "decode_seconds": round(times.get("compiling", 0) - times.get("decoding", 0), 1),
        "steps": len(batch_ends),
        "train_images_per_second": round(rate, 1),
        "seconds": round(time.monotonic() - started, 1),
    }), flush=True)  # fmt: skip


def _trained(data: Path, args: argparse.Namespace) -> dict:
    """Train in a child process with a data home of its own (deleted after); its results."""
    home = Path(tempfile.mkdtemp(prefix="catdog-large-home-"))
    env = os.environ | {"CATDOG_HOME": str(home), "CATDOG_MEMORY_BUDGET_MB": str(args.budget_mb)}
    command = [sys.executable, __file__, "--child", "--data", str(data), "--model", args.model,
               "--steps", str(args.steps)]  # fmt: skip
    print(f"training {args.model} for {args.steps} steps on {data} (budget {args.budget_mb} MB)",
          flush=True)  # fmt: skip
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"the training process failed:\n{out.stderr[-3000:]}")
        found = json.loads(out.stdout.strip().splitlines()[-1])
        found["cache_mb"] = round(_folder_mb(home / "cache"), 1)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if found["input"]["mode"] != "streaming":
        sys.exit(f"the run did not stream: {found['input']['summary']}")
    return found


def memory(args: argparse.Namespace) -> None:
    """Generate the data, train in a child process, print and write the results."""
    from catdog.train.budget import decoded_bytes
    from catdog.train.config import TrainConfig

    folder = args.folder or Path(tempfile.gettempdir()) / f"catdog-large-{args.images}"
    data = generate(Path(folder), args.images)
    image_size = int(TrainConfig(data=str(data), model=args.model).resolved().image_size)
    train_val = sum(len(list((data / split).glob("*/*.jpg"))) for split in ("train", "validation"))
    in_memory_mb = decoded_bytes(train_val, image_size) / 2**20
    if args.budget_mb is None:  # small enough to stream whatever the N
        args.budget_mb = round(min(256.0, in_memory_mb / 4), 1)
    found = _trained(data, args)
    row = {"images": args.images, "train_and_validation": train_val, "model": args.model,
           "budget_mb": args.budget_mb, "in_memory_would_hold_mb": round(in_memory_mb, 1),
           **found, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    rows = merge_rows(RESULTS / "large_dataset.json", row, key=("images", "model", "steps"))
    info = machine()
    lines = [
        "# Training on a dataset bigger than memory (streamed)",
        "",
        "Generated 256-px JPEGs (90% train, 5% validation, 5% test); one fresh process per row.",
        "",
        "| N | model, px | steps | budget | peak RSS (VmHWM) | decoding | compiling | training "
        "| in memory would hold | disk cache | decoding | training speed |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['images']:,} | {r['model']}, {r['image_size']} | {r['steps']} | "
            f"{r['budget_mb']:g} MB | {r['peak_rss_mb']:,.0f} MB | "
            + " | ".join(f"{r['peak_rss_mb_by_phase'].get(p, 0):,.0f} MB" for p in PHASES)
            + " | "
            f"{r['in_memory_would_hold_mb']:,.0f} MB | {r['cache_mb']:,.0f} MB | "
            f"{r['decode_seconds']:,.0f} s | {r['train_images_per_second']:.1f} img/s |"
            for r in sorted(rows, key=lambda r: r["images"])
        ),
        "",
        "Peak RSS is the training process's whole life (TensorFlow alone: about 620 MB); the "
        "three columns after it are its resident memory sampled every 0.2 s while it decodes "
        "into the disk cache, builds the model and compiles the first step, and trains. "
        "Training speed: images/s after the first "
        f"{WARMUP_STEPS} steps (which compile). {machine_line(info)} {_load()}",
    ]
    write_results("large_dataset", {"machine": info, "rows": rows}, lines)


def _load() -> str:
    """The machine's load when a results table is written (other work skews these numbers)."""
    one, five, _ = os.getloadavg()
    return f"Load average at the end: {one:.1f} (1 min), {five:.1f} (5 min)."


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


# ---------------------------------------------------------------------------------- throughput


def _throughput_child(args: argparse.Namespace) -> None:
    """In a fresh process: images/s of the pipeline alone and of fit, on one path."""
    from catdog.model.backend import keras
    from catdog.model.registry import build_model, compile_model
    from catdog.train.config import TrainConfig
    from catdog.train.pipeline import make_dataset, open_splits
    from catdog.train.presets import get_preset

    cfg = TrainConfig(data=str(DATA), model="catdog-net").resolved()
    size, batch = int(cfg.image_size), int(cfg.batch_size)
    opened = open_splits(DATA, ("train",), ["cats", "dogs"], size)
    (split,) = opened.splits
    dataset = make_dataset(split, batch_size=batch, shuffle=True, augment=cfg.augmentation,
                           seed=0).repeat()  # fmt: skip
    warmup, steps = 5, args.steps
    batches = iter(dataset)
    for _ in range(warmup):
        next(batches)
    started = time.perf_counter()
    for _ in range(steps):
        next(batches)
    pipeline = steps * batch / (time.perf_counter() - started)

    model = build_model("catdog-net", image_size=size, num_classes=2, precision="float32")
    compile_model(model, num_classes=2, learning_rate=1e-3,
                  optimizer=get_preset("catdog-net").optimizer)  # fmt: skip
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(
        time.perf_counter()))  # fmt: skip
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
    fit = steps * batch / (ends[-1] - ends[warmup - 1])
    print(json.dumps({"path": opened.choice.reason.split(":")[0], "summary": opened.summary,
                      "pipeline_images_per_second": round(pipeline, 1),
                      "fit_images_per_second": round(fit, 1)}), flush=True)  # fmt: skip


def throughput(args: argparse.Namespace) -> None:
    """Run the in-memory and streamed measurements in fresh processes; print and write."""
    if not DATA.is_dir():
        print(f"skipped: the seed's photos are not at {DATA} (they sit beside the checkout, "
              "in ../shared/data)")  # fmt: skip
        return
    home = Path(tempfile.mkdtemp(prefix="catdog-throughput-home-"))
    rows = []
    try:
        for label, budget_mb in (("in memory", "100000"), ("streamed", "1")):
            env = os.environ | {"CATDOG_HOME": str(home), "CATDOG_MEMORY_BUDGET_MB": budget_mb}
            command = [sys.executable, __file__, "--throughput-child", "--steps", str(args.steps)]
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"the {label} measurement failed:\n{out.stderr[-3000:]}")
            rows.append({"label": label, **json.loads(out.stdout.strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    info = machine()
    lines = [
        "# Streamed vs in-memory input: images per second",
        "",
        f"The seed's 2000 training photos, catdog-net at 112 px, batch 32, its augmentation; "
        f"{args.steps} batches after 5 of warm-up, each path in a fresh process.",
        "",
        "| path | input pipeline alone | fit (float32) |",
        "|---|---|---|",
        *(
            f"| {r['label']} | {r['pipeline_images_per_second']:.0f} img/s | "
            f"{r['fit_images_per_second']:.1f} img/s |"
            for r in rows
        ),
        "",
        f"{machine_line(info)} {_load()}",
    ]
    write_results("large_dataset_throughput", {"machine": info, "rows": rows}, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000, help="images to generate")
    parser.add_argument("--folder", type=Path, help="where to generate them (outside the repo)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (200) or "
                        "timed batches with --throughput (40)")  # fmt: skip
    parser.add_argument("--model", default="catdog-net")
    parser.add_argument(
        "--budget-mb",
        type=float,
        default=None,
        help="memory budget of the training (default: 256, or a quarter of the decoded "
        "training and validation images if less, so that it streams)",
    )
    parser.add_argument("--throughput", action="store_true", help="streamed vs in memory")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--throughput-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _train_child(args)
    elif args.throughput_child:
        _throughput_child(args)
    elif args.throughput:
        args.steps = args.steps or 40
        throughput(args)
    else:
        args.steps = args.steps or 200
        memory(args)


if __name__ == "__main__":
    main()
