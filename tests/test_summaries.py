"""The presets' stored layer tables are exactly what Keras builds today."""

from __future__ import annotations

import json

import pytest

from catdog.train.summaries import (
    FILE,
    build_summary,
    default_settings,
    known_summary,
    summary_key,
)


def test_the_file_holds_every_default_and_nothing_else() -> None:
    stored = json.loads(FILE.read_text(encoding="utf-8"))
    assert set(stored) == {summary_key(*s) for s in default_settings()}
    assert summary_key("seed-convnet", 150, 2, 0.0) in stored  # the seed's own model


@pytest.mark.slow
def test_every_stored_table_is_what_keras_builds() -> None:
    for settings in default_settings():
        assert known_summary(*settings) == build_summary(*settings), settings


def test_the_seeds_model_has_its_3453121_parameters_without_tensorflow() -> None:
    rows = known_summary("seed-convnet", 150, 2, 0.0)
    assert rows is not None and sum(r["params"] for r in rows) == 3_453_121
    assert known_summary("seed-convnet", 151, 2, 0.0) is None  # other settings are built
