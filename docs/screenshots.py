"""Take the README's screenshots of the dashboard, on the built-in demo data.

    python docs/screenshots.py          # about 10 minutes on 2 cores; writes docs/*.png

Makes a fresh data home with the demo dataset, trains the seed's two networks on it from the
command line (``seed-baseline`` overfits, ``seed-dropout`` with augmentation does not), serves
``streamlit run app.py`` on it and photographs three pages in Debian's Chromium (Playwright):
Augmentation (the live grid), History (the two runs' curves) and Predict (a drawn cat with its
Grad-CAM heatmap). Only synthetic demo images appear in the pictures.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hosted_memory import idle, start_server  # noqa: E402  (the benchmarks' server helpers)

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
# The demo story's settings (benchmarks/README.md, "The demo data tells the same story").
TRAIN = ["--data", "demo", "--image-size", "96", "--learning-rate", "1e-3", "--batch-size", "20",
         "--no-test"]  # fmt: skip


def catdog(home: Path, *args: str) -> str:
    """Run ``python -m catdog ARGS`` on the data home ``home``; its standard output."""
    env = {**os.environ, "CATDOG_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "catdog", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def cat_png() -> bytes:
    """A drawn cat (the demo's own generator, a seed not in the dataset) as PNG bytes."""
    from catdog.data.cartoon import draw_animal

    buffer = io.BytesIO()
    draw_animal("cat", np.random.default_rng(2026), (200, 180)).save(buffer, "PNG")
    return buffer.getvalue()


def shoot(url: str) -> None:
    """Photograph the Augmentation, History and Predict pages into docs/."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.goto(f"{url}/augmentation")
        page.get_by_text("Variant seed").wait_for(timeout=120_000)
        page.locator('[data-testid="stMain"] img').nth(9).wait_for(timeout=120_000)  # 1 + 9
        idle(page)
        page.screenshot(path=str(OUT / "augmentation.png"))
        page.goto(f"{url}/history")
        page.get_by_text("Training and validation accuracy").first.wait_for(timeout=60_000)
        idle(page)
        page.screenshot(path=str(OUT / "history.png"))
        page.goto(f"{url}/predict")
        page.get_by_text("Upload photos to classify them").wait_for(timeout=60_000)
        page.locator('input[type="file"]').first.set_input_files(
            files=[{"name": "a-cat.png", "mimeType": "image/png", "buffer": cat_png()}]
        )
        page.locator('[data-testid="stProgress"]').nth(1).wait_for(timeout=120_000)
        idle(page)
        page.wait_for_timeout(2000)  # the heatmap's image decodes
        page.screenshot(path=str(OUT / "predict.png"))
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="catdog-shots-") as tmp:
        home = Path(tmp)
        catdog(home, "demo-data")
        catdog(home, "train", "--model", "seed-baseline", "--epochs", "25", *TRAIN)
        catdog(home, "train", "--model", "seed-dropout", "--epochs", "60", *TRAIN,
               "--steps-per-epoch", "0")  # fmt: skip
        proc, url = start_server(home, hosted=False)
        try:
            shoot(url)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    for name in ("augmentation", "history", "predict"):
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
