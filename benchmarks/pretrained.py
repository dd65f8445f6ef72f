"""Transfer learning on the real photos: each pretrained preset, where its weights are present.

    python benchmarks/pretrained.py                        # vgg16 and mobilenet-v3-small
    python benchmarks/pretrained.py --only mobilenet-v3-small

Trains each preset with its defaults on ``../shared/data/cats_vs_dogs_small`` (the seed's
2000/1000/1000 split): feature extraction on the frozen base, then fine-tuning. The best epoch
is chosen on validation; the test split is read once, by the best model, at the end. A preset
whose ImageNet weights are not in Keras' cache (``~/.keras/models`` or ``$KERAS_HOME/models``)
is not measured (nothing is downloaded): the script says so and which file is missing.

Writes ``benchmarks/results/pretrained.{json,md}`` (one row per preset: best validation
accuracy with the frozen base and after fine-tuning, test accuracy, wall time, the machine).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import DATA, RESULTS, machine, machine_line, merge_rows, summarize, train_logged

from catdog.model.weights import backbone_of, cached_weights
from catdog.train.presets import PRESETS

PRESETS = [name for name, spec in PRESETS.items() if spec.backbone is not None]


def phase_rows(run_path: Path) -> dict:
    """Best validation accuracy in each phase of a finished run."""
    from catdog.train import runs

    history = runs.read_history(run_path)
    best = {}
    for phase, key in ((1, "val_frozen"), (2, "val_fine_tuned")):
        val = [r["val_accuracy"] for r in history if r.get("phase") == phase]
        best[key] = max(val) if val else None
    return best


def markdown(rows: list[dict], info: dict[str, str]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| model | epochs (fine-tuning) × batch | image size | best val, frozen base | "
        "best val, fine-tuned | test acc | wall time |",
        "|---|---|---|---|---|---|---|",
    ]

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    for r in rows:
        lines.append(
            f"| {r['model']} | {r['epochs']} ({r['fine_tune_epochs']}) × {r['batch_size']} | "
            f"{r['image_size']} | {pct(r['val_frozen'])} | {pct(r['val_fine_tuned'])} | "
            f"{pct(r['test_accuracy'])} | {r['wall_minutes']} min |"
        )
    lines.append("")
    lines.append(machine_line(info))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=PRESETS, action="append")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"the real photos are not here: {DATA} does not exist", file=sys.stderr)
        return 2
    out_json = RESULTS / "pretrained.json"
    measured = 0
    for model in args.only or PRESETS:
        backbone = backbone_of(model)
        if cached_weights(backbone) is None:
            print(f"{model}: not measured: weights not present ({backbone.file_name})")
            continue
        from catdog.train import runs

        path = train_logged(model, model=model, seed=args.seed)
        config = runs.read_json(path / runs.CONFIG_FILE)["train"]
        info = machine()
        row = summarize(path) | phase_rows(path) | {
            "fine_tune_epochs": config["fine_tune_epochs"], "machine": info,
        }  # fmt: skip
        rows = merge_rows(out_json, row, key=("model",))
        (RESULTS / "pretrained.md").write_text(markdown(rows, info))
        measured += 1
    if measured:
        print((RESULTS / "pretrained.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
