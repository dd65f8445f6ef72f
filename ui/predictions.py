"""Predictions and their cards, kept per (run's model, photo, options) so that a rerun of the
Predict page (a toggle, another photo added) classifies and decodes only what is new.

A session keeps its last :data:`KEEP` predictions (their heatmaps are a few kB); the cards (a
400-px JPEG of the photo, plain and with its heatmap, made from one decode) are shared by all
sessions, a bounded number for a bounded time.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from catdog.data.images import open_rgb
from catdog.inference.explain import ExplainError, overlay
from catdog.inference.predict import Prediction, Predictor

KEEP = 60  # predictions a session keeps: three requests of hosted mode's 20 photos
CARD_SIDE = 400  # pixels: a card's photo, shrunk (never enlarged)
_CACHE = "predictions"  # session: (model key, photo digest, name) → Prediction
_NO_HEATMAPS = "models_without_heatmaps"  # session: model keys Grad-CAM cannot explain


def classify(
    model: Predictor,
    model_key: tuple[Any, ...],
    photos: list[tuple[str, bytes]],
    heatmaps: bool,
    rule: Any = None,
) -> tuple[list[Prediction], list[str], str | None]:
    """Each photo's prediction (with its heatmap if asked and possible), computing only those
    this session has not had yet for this model.

    Args:
        model: the run's loaded model.
        model_key: what names the model and the options: the run's folder, best or last, the
            file's version, the "not sure" rule.
        photos: (name, bytes) of each photo.
        heatmaps: whether heatmaps are wanted.
        rule: the "not sure" rule to answer with (``None``: the run's own, if any).

    Returns:
        (predictions, the photos' digests, why there are no heatmaps or ``None``).

    Raises:
        catdog.policy.HostedLimitError: in hosted mode, the new photos are over a cap.
    """
    cache: OrderedDict = st.session_state.setdefault(_CACHE, OrderedDict())
    unexplained: dict = st.session_state.setdefault(_NO_HEATMAPS, {})  # model key → why
    heatmaps = heatmaps and model_key not in unexplained
    digests = [hashlib.sha256(data).hexdigest() for _, data in photos]
    keys = [(model_key, digest, name) for digest, (name, _) in zip(digests, photos, strict=True)]
    missing = [i for i, key in enumerate(keys) if _stale(cache.get(key), heatmaps)]
    if missing:
        wanted = [photos[i] for i in missing]
        try:
            fresh = model.predict(wanted, heatmaps=heatmaps, rule=rule)
        except ExplainError as exc:
            unexplained[model_key] = str(exc)
            fresh = model.predict(wanted, rule=rule)
        for i, prediction in zip(missing, fresh, strict=True):
            cache[keys[i]] = prediction
    for key in keys:
        cache.move_to_end(key)
    while len(cache) > KEEP:
        cache.popitem(last=False)
    return [cache[key] for key in keys], digests, unexplained.get(model_key)


def _stale(cached: Prediction | None, heatmaps: bool) -> bool:
    return cached is None or (heatmaps and cached.ok and cached.heatmap is None)


@st.cache_data(max_entries=200, ttl=3600, show_spinner=False)
def card_images(
    model_key: tuple[Any, ...],
    digest: str,
    name: str,
    has_heatmap: bool,
    _data: bytes,
    _heatmap: np.ndarray | None,
) -> tuple[bytes, bytes | None]:
    """A photo shrunk to fit :data:`CARD_SIDE` as JPEG, and the same with its heatmap over it
    (``None`` without one), from one decode.

    Raises:
        catdog.data.images.ImageError: the photo cannot be decoded.
    """
    image = open_rgb(_data, name=name, min_side=CARD_SIDE)
    image.thumbnail((CARD_SIDE, CARD_SIDE), Image.Resampling.BILINEAR)
    heat = overlay(image, _heatmap) if has_heatmap and _heatmap is not None else None
    return _jpeg(image), None if heat is None else _jpeg(heat)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
