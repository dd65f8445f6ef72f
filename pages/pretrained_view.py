"""A pretrained model's settings on the Train page: where its base's weights come from, and the
fine-tuning phase.

Not a page (app.py does not list it). In hosted mode a visitor may upload a weights file (within
the upload cap) but never name a file on the server: the path field is not offered, and catdog
refuses such a path anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from catdog.model.backbones import Backbone
from catdog.model.errors import ModelError
from catdog.model.weights import (
    backbone_of,
    check_weights_file,
    save_uploaded_weights,
    weights_status,
)
from catdog.policy import MB, HostedLimitError, current_policy
from catdog.system import disk_full
from catdog.train.presets import get_preset

KEEP = {"persist_state": "session"}  # a setting outlives a visit to another page
LEARNING_RATES = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
SOURCES = {
    "imagenet": "ImageNet (Keras' cache)",
    "path": "A file on this machine",
    "upload": "Upload a file",
}
CHECKED_UPLOADS = "train_weights_checked"  # session: (model, upload id) → (path, sentence, error)


@st.cache_data(max_entries=32, show_spinner="Checking the weights file…")
def checked_file(model: str, path: str, version: tuple[int, int]) -> tuple[bool, str]:
    """Whether ``path`` holds ``model``'s base weights, and the sentence that says so or why
    not; ``version`` (the file's mtime and size) keys the cache."""
    try:
        return True, check_weights_file(model, path)
    except ModelError as exc:
        return False, str(exc)


def path_ui(model: str, backbone: Backbone) -> tuple[str | None, bool]:
    """A path field (local use only); returns the path and whether it holds usable weights."""
    given = st.text_input("Weights file", key="train_weights_path", **KEEP,
                          placeholder=f"/path/to/{backbone.file_name}")  # fmt: skip
    if not given.strip():
        st.caption(f"Give the path of a weights file (.h5) of {backbone.name}.")
        return None, False
    path = Path(given.strip()).expanduser()
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (0, -1)  # missing: the check says so
    usable, sentence = checked_file(model, str(path), version)
    if usable:
        st.caption(sentence)
    else:
        st.error(sentence)
    return str(path), usable


def kept_upload(model: str, name: str, data: bytes) -> tuple[str | None, str | None, str | None]:
    """Check and keep an uploaded weights file: (where it is kept, what it is, None) or
    (None, None, why it is refused)."""
    with st.spinner("Checking the weights file…"):
        try:
            path, sentence = save_uploaded_weights(model, name, data)
        except (ModelError, HostedLimitError) as exc:
            return None, None, str(exc)
        except OSError as exc:  # a full disk, say
            full = disk_full(exc)
            todo = "free some disk space" if full else "check that the data home can be written"
            return None, None, f"{name} could not be kept ({exc.strerror or exc}); {todo}, " \
                "then upload it again"  # fmt: skip
    return str(path), sentence, None


def upload_ui(model: str, backbone: Backbone) -> tuple[str | None, bool]:
    """A file upload, kept in the data home once checked; returns its path and whether it
    holds usable weights."""
    upload = st.file_uploader(f"Weights file of {backbone.name} (.h5)", type=["h5"],
                              key="train_weights_upload")  # fmt: skip
    if (cap := current_policy().max_upload_mb) is not None:
        st.caption(f"Hosted demo: a weights file of at most {cap:g} MB ({backbone.name}'s "
                   f"ImageNet file is {backbone.size / MB:.1f} MB).")  # fmt: skip
    if upload is None:
        st.caption(f"Upload a weights file (.h5) of {backbone.name}, e.g. {backbone.file_name}.")
        return None, False
    checked = st.session_state.setdefault(CHECKED_UPLOADS, {})
    key = (model, upload.file_id)
    if key not in checked:
        checked[key] = kept_upload(model, upload.name, upload.getvalue())
    path, sentence, error = checked[key]
    if error:
        st.error(error)
        return None, False
    st.caption(sentence)
    return path, True


def weights_ui(model: str, backbone: Backbone) -> tuple[str | None, bool]:
    """Where the base's weights come from; returns the weights file (None: Keras' cache, filled
    on first use) and whether training can start with it."""
    server_files = current_policy().allows_server_files
    sources = [s for s in SOURCES if s != "path" or server_files]
    if st.session_state.get("train_weights_source") not in sources:
        st.session_state["train_weights_source"] = "imagenet"
    source = st.radio("Weights of the pretrained base", sources, key="train_weights_source",
                      format_func=SOURCES.get, horizontal=True, **KEEP)  # fmt: skip
    if source == "path":
        return path_ui(model, backbone)
    if source == "upload":
        return upload_ui(model, backbone)
    st.caption(weights_status(model))
    return None, True


def fine_tune_ui(backbone: Backbone, epochs: int) -> dict[str, Any]:
    """The fine-tuning epochs (the last of the run), their learning rate and the base layer
    they train from."""
    most = max(epochs - 1, 0)  # the head trains on the frozen base for at least one epoch
    if st.session_state.get("train_fine_tune_epochs", 0) > most:
        st.session_state["train_fine_tune_epochs"] = most
    if st.session_state.get("train_fine_tune_from") not in backbone.blocks:
        st.session_state["train_fine_tune_from"] = backbone.top_block
    # fmt: off
    a, b = st.columns(2)
    tune = a.number_input("Fine-tuning epochs", 0, most, key="train_fine_tune_epochs", **KEEP,
                          help="Of the epochs, how many at the end also train the base's top "
                          "layers, after the head has trained on the frozen base; 0 = the "
                          "frozen base throughout.")
    rates = sorted({*LEARNING_RATES, st.session_state.get("train_fine_tune_lr") or 1e-5})
    rate = b.select_slider("Fine-tuning learning rate", rates, key="train_fine_tune_lr",
                           format_func=lambda v: f"{v:g}", disabled=not tune, **KEEP)
    start = st.selectbox("Fine-tune from", backbone.blocks, key="train_fine_tune_from",
                         disabled=not tune, **KEEP,
                         format_func=lambda name: f"{name} (the top block)"
                         if name == backbone.top_block else name,
                         help="The first layer of the base that fine-tuning trains: it and "
                         "every layer after it (batch normalisation stays frozen). Lower "
                         "trains more of the base, slower and with more risk of overfitting.")
    # fmt: on
    return {"fine_tune_epochs": int(tune), "fine_tune_lr": float(rate), "fine_tune_from": start}


def pretrained_ui(model: str, epochs: int, augment: bool) -> tuple[dict[str, Any], bool]:
    """For a pretrained model, its weights and fine-tuning settings (as TrainConfig fields) and
    whether training can start with them; ``({}, True)`` for a model trained from scratch."""
    model = get_preset(model).network  # the weights belong to the network
    backbone = backbone_of(model)
    if backbone is None:
        return {}, True
    with st.expander("Pretrained base: weights and fine-tuning", expanded=True):
        weights, usable = weights_ui(model, backbone)
        tuning = fine_tune_ui(backbone, epochs)
        if not augment:
            st.caption(
                "Without augmentation the frozen base computes each image's features once, "
                "and the head trains on them alone, so the feature-extraction epochs skip the "
                "base's arithmetic (the book's fast feature extraction) unless the images are "
                "streamed from disk or train on several devices. Fine-tuning trains on the "
                "images."
            )
    return {"weights": weights, **tuning}, usable
