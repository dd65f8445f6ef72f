"""The Dataset page's "New dataset" tab: name classes, give each photos (uploads or the camera),
see them, and make a dataset of them, or add them to the active one.

The photos gathered so far live in the session (``st.session_state``, keys ``builder_*``);
checking, splitting and writing them is :mod:`catdog.data.builder`'s.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import streamlit as st

from catdog.data.builder import (
    BuildReport,
    add_photos,
    build_dataset,
    builder_made,
    check_gathered,
    photo_thumbnail,
    version_name,
)
from catdog.data.choices import DatasetChoice, dataset_name_for
from catdog.data.datasets import DatasetError
from catdog.data.images import IMAGE_SUFFIXES, ImageError
from catdog.data.names import check_class_names
from catdog.data.photo_split import plan_preview
from catdog.policy import HostedLimitError, current_policy
from ui.frame import PAGES
from ui.shared import active_choice, literal, set_active_dataset
from ui.uploads import upload_limit_mb

CLASSES = "builder_classes"  # [{"id": k, "name": default name}] in order
PHOTOS = "builder_photos"  # class id -> [{"pid", "name", "data", "thumb"}]
REJECTED = "builder_rejected"  # class id -> one-line reasons of files refused
GENERATION = "builder_generation"  # class id -> n: a new key empties its uploader and camera
TARGET = "builder_target"  # "" (a new dataset) or the path of the dataset added to
REPORT = "builder_report"  # the last result's summary
THUMB_COLUMNS = 8
IMAGE_TYPES = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)


def _next_id() -> int:
    st.session_state["builder_seq"] = st.session_state.get("builder_seq", 0) + 1
    return st.session_state["builder_seq"]


def new_class(name: str) -> dict:
    """A class entry, its name field pre-filled with ``name``."""
    entry = {"id": _next_id(), "name": name}
    st.session_state[f"builder_class_{entry['id']}"] = name
    return entry


def reset(target: str, names: list[str]) -> None:
    """Start gathering afresh for ``target`` with classes ``names``."""
    st.session_state[TARGET] = target
    st.session_state[CLASSES] = [new_class(n) for n in names]
    for key in (PHOTOS, REJECTED, GENERATION):
        st.session_state[key] = {}


def class_name(entry: dict) -> str:
    """The name typed for a class (its text field), else its default."""
    return st.session_state.get(f"builder_class_{entry['id']}", entry["name"])


def gathered() -> tuple[int, int]:
    """Photos gathered in this session (all classes) and their bytes."""
    photos = [p for per_class in st.session_state[PHOTOS].values() for p in per_class]
    return len(photos), sum(len(p["data"]) for p in photos)


def take(cid: int, cls: str, files: list[tuple[str, bytes]]) -> None:
    """Check new photos of class ``cid``: keep the good ones (with a thumbnail), note why the
    others are refused."""
    kept = st.session_state[PHOTOS].setdefault(cid, [])
    rejected = st.session_state[REJECTED].setdefault(cid, [])
    count, nbytes = gathered()
    for name, data in files:
        try:
            check_gathered(count + 1, nbytes + len(data))
            thumb = photo_thumbnail(cls, name, data)
        except (ImageError, HostedLimitError) as exc:
            rejected.append(str(exc))
            continue
        kept.append({"pid": _next_id(), "name": name, "data": data, "thumb": thumb})
        count, nbytes = count + 1, nbytes + len(data)
    generation = st.session_state[GENERATION]
    generation[cid] = generation.get(cid, 0) + 1  # empties the uploader and the camera
    st.rerun()


def inputs_ui(cid: int, cls: str) -> None:
    """A multi-file uploader and (behind a toggle) the camera for one class."""
    gen = st.session_state[GENERATION].get(cid, 0)
    uploads = st.file_uploader(
        f"Photos of {cls}", type=IMAGE_TYPES, accept_multiple_files=True,
        key=f"builder_upload_{cid}_{gen}", label_visibility="collapsed",
        max_upload_size=upload_limit_mb(),
    )  # fmt: skip
    if uploads:
        take(cid, cls, [(u.name, u.getvalue()) for u in uploads])
    if st.toggle("Camera", key=f"builder_camera_on_{cid}"):
        shot = st.camera_input(f"A photo of {cls}", key=f"builder_camera_{cid}_{gen}")
        if shot is not None:
            n = len(st.session_state[PHOTOS].get(cid, [])) + 1
            take(cid, cls, [(f"camera-{n}.jpg", shot.getvalue())])


def thumbnails_ui(cid: int) -> None:
    """The class's photos as thumbnails, each with a remove button; the files refused."""
    photos = st.session_state[PHOTOS].get(cid, [])
    for reason in st.session_state[REJECTED].get(cid, []):
        st.warning(f"{literal(reason)} — left out.", icon=":material/broken_image:")
    cells = st.columns(THUMB_COLUMNS)
    for k, photo in enumerate(photos):
        with cells[k % THUMB_COLUMNS]:
            st.image(photo["thumb"], width="stretch")
            if st.button("Remove", key=f"builder_remove_{photo['pid']}", icon=":material/close:",
                         type="tertiary", help=photo["name"]):  # fmt: skip
                photos.remove(photo)
                st.rerun()


def class_ui(entry: dict, removable: bool) -> None:
    """One class: its name, its photos' inputs and thumbnails, a Remove class button."""
    cid = entry["id"]
    with st.container(border=True):
        name_col, count_col, remove_col = st.columns([3, 2, 1], vertical_alignment="bottom")
        cls = name_col.text_input("Class name", key=f"builder_class_{cid}")
        count_col.caption(f"{len(st.session_state[PHOTOS].get(cid, [])):,} photo(s)")
        if removable and remove_col.button("Remove class", key=f"builder_drop_{cid}",
                                           icon=":material/delete:", type="tertiary"):  # fmt: skip
            st.session_state[CLASSES].remove(entry)
            st.session_state[PHOTOS].pop(cid, None)
            st.rerun()
        inputs_ui(cid, cls.strip() or "this class")
        thumbnails_ui(cid)


def classes_ui(at_least: int) -> dict[str, list[tuple[str, bytes]]] | None:
    """Every class with its photos; None (and the reason shown) while a name is wrong."""
    entries = st.session_state[CLASSES]
    for entry in entries:
        class_ui(entry, removable=len(entries) > at_least)
    if st.button("Add a class", icon=":material/add:", key="builder_add_class"):
        st.session_state[CLASSES].append(new_class(f"class {len(entries) + 1}"))
        st.rerun()
    names = [class_name(e) for e in entries]
    try:
        names = check_class_names(names, at_least=at_least)
    except DatasetError as exc:
        st.error(str(exc))
        return None
    photos = st.session_state[PHOTOS]
    return {n: [(p["name"], p["data"]) for p in photos.get(e["id"], [])]
            for n, e in zip(names, entries, strict=True)}  # fmt: skip


def preview_ui(photos: dict[str, list[tuple[str, bytes]]]) -> bool:
    """How the photos would be split, with warnings; whether they can make a dataset."""
    lines, warnings, errors = plan_preview({cls: len(given) for cls, given in photos.items()})
    if lines:
        st.markdown("**Split** (each class on its own, at random):  \n" + "  \n".join(
            literal(line) for line in lines))  # fmt: skip
    for warning in warnings:
        st.warning(literal(warning) + ".")
    for error in errors:
        st.caption(literal(error) + ".")
    return not errors


def show_result() -> None:
    """The last dataset made (or photos added), with every file left out and why (above the
    tabs: the page opens on Browse, showing it, after it is made)."""
    if REPORT not in st.session_state:
        return
    summary = st.session_state[REPORT]
    said, link = st.columns([3, 1], vertical_alignment="center")
    said.success(literal(summary.splitlines()[0]) + " It is the active dataset now.")
    link.page_link(PAGES["train"], label="Train a model on it", icon=":material/model_training:")
    with st.expander("What was done", expanded="Left out" in summary):
        st.code(summary, language=None)


def _write(make: Callable[[], BuildReport]) -> None:
    """Run ``make()`` (building or adding), make the result active, start afresh."""
    with st.spinner("Checking and writing the photos…"):
        try:
            report = make()
        except (DatasetError, HostedLimitError) as exc:
            st.error(f"Nothing was written: {exc}")
            return
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            st.error("Nothing was written: " + ("the disk is full; free some space" if full
                     else f"{exc.strerror or exc}"))  # fmt: skip
            return
    set_active_dataset(report.out)
    st.session_state[REPORT] = report.summary()
    for key in ("builder_name", TARGET):  # start afresh: a new name, the classes again
        st.session_state.pop(key, None)
    st.rerun()


def new_dataset_ui() -> None:
    """Name, classes, photos, the split; Create dataset."""
    if "builder_name" not in st.session_state:
        st.session_state["builder_name"] = dataset_name_for("my-photos")
    name = st.text_input("Dataset name", key="builder_name")
    photos = classes_ui(at_least=2)
    ready = photos is not None and preview_ui(photos)
    if st.button("Create dataset", type="primary", icon=":material/create_new_folder:",
                 disabled=not ready, key="builder_create"):  # fmt: skip
        _write(lambda: build_dataset(name, photos))


def add_ui(choice: DatasetChoice) -> None:
    """Photos for the active dataset's classes (or new ones); added as a new version or, for a
    dataset made here, in place."""
    photos = classes_ui(at_least=1)
    in_place_ok = builder_made(choice.path) and not choice.example and not choice.is_demo
    hows = ["version"] + (["in place"] if in_place_ok else [])
    labels = {"version": f"As a new version ({version_name(choice.name)}); {choice.name} stays "
              "as it is", "in place": f"Into {choice.name} itself (only adds files)"}  # fmt: skip
    how = st.radio("How", hows, format_func=labels.get, key="builder_how")
    if not in_place_ok:
        st.caption(f"{choice.name} was not made here from photos, so it is never changed: the "
                   "photos make a new version of it.")  # fmt: skip
    wanted = {cls: given for cls, given in (photos or {}).items() if given}
    if st.button("Add photos", type="primary", icon=":material/add_photo_alternate:",
                 disabled=not wanted, key="builder_add"):  # fmt: skip
        _write(lambda: add_photos(choice.path, wanted, in_place=how == "in place"))


def builder_ui() -> None:
    """The tab: make a new dataset, or add photos to the active one."""
    choice = active_choice()
    targets = ["new"] + ([str(choice.path)] if choice.info is not None else [])
    target = st.radio("Photos for", targets, horizontal=True, key="builder_for",
                      format_func=lambda t: "A new dataset" if t == "new"
                      else f"Adding to {choice.name}")  # fmt: skip
    wanted = "" if target == "new" else target
    if st.session_state.get(TARGET) != wanted or CLASSES not in st.session_state:
        names = ["class 1", "class 2"] if target == "new" else list(choice.info.classes)
        reset(wanted, names)
    if caps := current_policy().upload_limits_line():
        st.caption(caps)
    if target == "new":
        new_dataset_ui()
    else:
        add_ui(choice)
