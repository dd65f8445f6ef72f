"""The input size a time-limited preset trains at, chosen from the machine's measured speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catdog.train.config import TrainConfig
from catdog.train.input_size import choose_image_size
from catdog.train.precision import CACHE_FILE, cache_key, cpu_description

# The seed's split: 2000 training and 1000 validation photos; catdog-net's 28-minute limit.
SEED_SPLIT = (2000, 1000)


def test_a_slow_machine_trains_catdog_net_at_96_px_with_the_epochs_that_buys() -> None:
    # 84 images/s: catdog-net in float32 on an AVX2-only CPU (benchmarks/results/cpu_levels.md)
    choice = choose_image_size("catdog-net", 112, 145, 28.0, 84.0, *SEED_SPLIT)
    assert choice is not None and choice.image_size == 96
    # The estimates from the step's speed, against what real runs fitted on that CPU: 60 of
    # 112 px and 83 of 96 px (the run itself then fits its schedule to its real epochs).
    assert 55 <= choice.epochs_at_preset_size <= 62
    assert 75 <= choice.epochs_at_chosen_size <= 85
    assert choice.reason.startswith(
        f"96 px: about {choice.epochs_at_preset_size} epochs of 112 px fit the 28-minute limit"
    )


@pytest.mark.parametrize(
    ("model", "size", "epochs", "minutes", "speed", "why"),
    [
        ("catdog-net", 112, 145, 28.0, 165.0, "bfloat16 on AVX-512 BF16: ~110 epochs fit"),
        ("catdog-net", 112, 40, 28.0, 84.0, "all 40 epochs fit: the limit does not bind"),
        ("catdog-net", 128, 145, 28.0, 84.0, "a size chosen by hand is kept"),
        ("catdog-net", 112, 145, 0.0, 84.0, "no time limit"),
        ("seed-dropout", 150, 100, 28.0, 20.0, "the seed's recipe has no smaller size"),
    ],
)
def test_the_preset_size_is_kept(model, size, epochs, minutes, speed, why) -> None:
    assert choose_image_size(model, size, epochs, minutes, speed, *SEED_SPLIT) is None, why


def test_only_the_presets_own_size_is_fitted_unless_asked() -> None:
    def fit(**settings) -> bool:
        return bool(TrainConfig(data=".", **settings).resolved().fit_image_size)

    assert fit(model="catdog-net")
    assert not fit(model="catdog-net", image_size=128)  # given by hand: kept
    assert fit(model="catdog-net", image_size=112, fit_image_size=True)  # the page's way
    assert not fit(model="catdog-net", fit_image_size=False)
    assert not fit(model="seed-dropout")
    resolved = TrainConfig(data=".", model="catdog-net").resolved()
    assert resolved.resolved() == resolved  # resolving twice changes nothing


def _measured_speed(home: Path, model: str, size: int, batch: int, speed: float) -> None:
    """The record ``auto`` leaves in the data home after timing this machine (here: as if it
    had measured ``speed`` images/s in float32 and found no bfloat16)."""
    entry = {"speeds": {"float32": speed}, "errors": {"bfloat16": "no kernel"},
             "measured": "2026-11-30"}  # fmt: skip
    cache = home / "cache" / CACHE_FILE
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({cache_key(model, size, batch): entry}))


@pytest.mark.slow
def test_a_run_on_a_slow_machine_trains_at_the_smaller_size_and_says_why(
    catdog_home: Path, tiny_dataset: Path
) -> None:
    from catdog.train import runs
    from catdog.train.trainer import train

    # 1 image/s: 32 + 16/3 images take ~38 s an epoch, so a 1-minute limit buys 1 of 3.
    _measured_speed(catdog_home, "catdog-net", 112, 8, 1.0)
    events: list[str] = []
    config = TrainConfig(data=str(tiny_dataset), model="catdog-net", epochs=3, batch_size=8,
                         time_limit_minutes=1.0, tta=False)  # fmt: skip
    result = train(config, on_event=lambda e: events.append(e.message or ""))
    saved = runs.read_json(result.path / runs.CONFIG_FILE)
    assert saved["train"]["image_size"] == 96 and saved["train"]["fit_image_size"] is True
    assert saved["image_size"]["epochs_at_preset_size"] == 1
    assert any(m.startswith("input size 96 px: about 1 epochs of 112 px fit") for m in events)
    assert saved["precision"]["machine"] == cpu_description()
    from catdog.model.saving import load_keras_model

    assert load_keras_model(result.path / "last.keras").input_shape[1:3] == (96, 96)
