"""Augmentation: tune the seed's random transforms and see them on a training image."""

from ui.frame import enter_page

enter_page()  # first: the workspace and the error guard, or a rerun through app.py

import random
from dataclasses import fields
from pathlib import Path

import numpy as np
import streamlit as st

from catdog.data.datasets import DatasetInfo, list_images
from catdog.data.model_input import load_for_model
from catdog.train.augment import FILL_MODES, AugmentConfig
from catdog.train.preview import preview
from ui.frame import enter_workspace, guarded
from ui.shared import AUGMENTATION, augmentation, require_dataset

PREVIEW_SIZE = 150  # the seed's input size: what the model sees
# field: (label, max, step, help); every range starts at 0 (= off)
SLIDERS = {
    "rotation_range": ("Rotation (± degrees)", 180.0, 1.0, "%.0f°", "Angle drawn from ±range."),
    "width_shift_range": ("Width shift (± fraction)", 0.9, 0.05, "%.2f", "Of the image width."),
    "height_shift_range": ("Height shift (± fraction)", 0.9, 0.05, "%.2f", "Of the height."),
    "shear_range": (
        "Shear (± degrees)",
        45.0,
        0.1,
        "%.1f°",
        "Keras ≥ 2.2 reads the seed's 0.2 as degrees (barely visible); the book's Keras read "
        "it as radians, ≈ 11.5°.",
    ),
    "zoom_range": ("Zoom (± fraction)", 0.9, 0.05, "%.2f", "Factors drawn from [1 − z, 1 + z]."),
    "brightness_range": ("Brightness (± fraction)", 0.9, 0.05, "%.2f", "Extra: off in the seed."),
    "contrast_range": ("Contrast (± fraction)", 1.0, 0.05, "%.2f", "Extra: off in the seed."),
    "cutout": (
        "Cutout (square side, fraction)",
        1.0,
        0.05,
        "%.2f",
        "Extra: erase one square per image, filled with its mean colour. Off in the seed.",
    ),
}
KEYS = {f.name: f"aug_{f.name}" for f in fields(AugmentConfig)}


def reset(config: AugmentConfig) -> None:
    """Put every widget back to ``config``'s values."""
    for name, key in KEYS.items():
        st.session_state[key] = getattr(config, name)


def augment_ui() -> AugmentConfig:
    """Sliders and toggles for every setting; returns the chosen AugmentConfig."""
    if any(key not in st.session_state for key in KEYS.values()):
        reset(augmentation())
    values = {}
    for name, (label, top, step, fmt, help_text) in SLIDERS.items():
        values[name] = st.slider(
            label, 0.0, top, step=step, format=fmt, key=KEYS[name], help=help_text,
            persist_state="session",
        )  # fmt: skip
    values["horizontal_flip"] = st.toggle(
        "Horizontal flip", key=KEYS["horizontal_flip"], persist_state="session"
    )
    values["fill_mode"] = st.selectbox(
        "Fill mode",
        FILL_MODES,
        key=KEYS["fill_mode"],
        persist_state="session",
        help="How pixels brought in from outside the image are filled.",
    )
    st.button(
        "Reset to the seed's settings",
        on_click=reset,
        args=(AugmentConfig(),),
        icon=":material/restart_alt:",
    )
    return AugmentConfig(**values)


def pick_random(files: list[Path]) -> None:
    st.session_state["aug_image"] = random.choice(files)


def image_ui(info: DatasetInfo) -> Path:
    """Class and image pickers with a random-image button; returns the chosen image."""
    left, middle, right = st.columns([1, 2, 1.2], vertical_alignment="bottom")
    cls = left.selectbox("Class", info.classes, key="aug_class")
    files = list_images(info.root, "train", cls)
    if st.session_state.get("aug_image") not in files:
        st.session_state["aug_image"] = files[0]
    chosen = middle.selectbox(
        "Training image", files, key="aug_image", format_func=lambda p: p.name
    )
    right.button(
        "Random image",
        on_click=pick_random,
        args=(files,),
        icon=":material/casino:",
        width="stretch",
    )
    return chosen


@st.cache_data(max_entries=64, show_spinner=False)
def variants(path: str, settings: tuple, seed: int) -> np.ndarray:
    image = load_for_model(path, PREVIEW_SIZE)
    return preview(image, AugmentConfig(**dict(settings)), n=9, seed=seed)


@st.fragment
def studio(info: DatasetInfo) -> None:
    """The settings and the preview: moving a slider reruns only this, not the whole page."""
    with guarded("the Augmentation page's preview"):
        enter_workspace(update_url=False)  # a fragment's rerun does not pass through app.py
        settings_col, preview_col = st.columns([1, 2], gap="large")
        with settings_col:
            config = augment_ui()
        st.session_state[AUGMENTATION] = config
        with preview_col:
            preview_ui(info, config)


def preview_ui(info: DatasetInfo, config: AugmentConfig) -> None:
    """The chosen training image and a 3×3 grid of its augmented variants."""
    path = image_ui(info)
    seed = st.session_state.setdefault("aug_seed", 0)
    original_col, grid_col = st.columns([1, 3], gap="medium")
    with original_col:
        st.image(load_for_model(path, PREVIEW_SIZE), caption="Original", width="stretch")
        if st.button(
            "Reseed", icon=":material/refresh:", width="stretch", help="New random variants"
        ):
            st.session_state["aug_seed"] = seed = seed + 1
        st.caption(f"Variant seed {seed}")
    with grid_col:
        grid = variants(str(path), tuple(sorted(config.to_dict().items())), seed)
        for row in range(3):
            for cell, image in zip(st.columns(3), grid[row * 3 : row * 3 + 3], strict=True):
                cell.image(image, width="stretch")
    if not config.enabled:
        st.info("Every transform is off: training would see the images unchanged.")


st.title("Augmentation")
st.caption(
    "The seed's ImageDataGenerator settings, as random transforms of each training image. "
    "Training uses these settings when augmentation is on (the Train page)."
)
studio(require_dataset())
