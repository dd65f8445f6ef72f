"""Dataset: pick the active dataset, import a new one, and browse its images."""

from ui.frame import enter_page

enter_page()  # first: the workspace and the error guard, or a rerun through app.py

from functools import partial
from pathlib import Path

import streamlit as st

from catdog.data.choices import dataset_choices, dataset_name_for, describe, import_named
from catdog.data.datasets import (
    SPLITS,
    DatasetError,
    DatasetInfo,
    dataset_version,
    delete_dataset,
    list_images,
)
from catdog.data.images import ImageError
from catdog.data.paths import demo_dataset_dir
from catdog.data.stats import count_rows, size_rows, size_summary
from catdog.data.thumbnails import image_details, preview_image
from catdog.paging import page_count, page_items
from catdog.policy import HostedLimitError, current_policy
from catdog.svg_charts import image_sizes_svg, split_counts_svg
from catdog.train.runs import runs_training_on
from ui.builder_view import builder_ui, show_result
from ui.frame import read_only
from ui.health_view import health_ui
from ui.shared import (
    active_choice,
    confirmed,
    literal,
    require_dataset,
    set_active_dataset,
    thumb,
)
from ui.uploads import upload_limit_mb

GRID_COLUMNS, GRID_ROWS = 6, 3
SPLIT_CHOICES = {
    "keep": "Keep the source's split (50/25/25 if it has none)",
    "seed": "The seed's split: 1000/500/500 images per class",
    "fractions": "Random split by fractions",
}


def choose_ui() -> None:
    """Radio of datasets; the choice becomes the session's active dataset."""
    choices = dataset_choices()
    paths = [str(c.path) for c in choices]
    current = str(active_choice().path)
    picked = st.radio(
        "Active dataset (used by the other pages)",
        paths,
        index=paths.index(current),
        format_func=lambda p: describe(choices[paths.index(p)]),
    )
    if picked != current:
        set_active_dataset(picked)
        st.rerun()


def delete_ui() -> None:
    """Delete the active dataset if it is the visitor's own, after a confirmation."""
    choice = active_choice()
    if choice.is_demo or choice.example or choice.info is None:
        return
    if st.session_state.get("dataset_delete_pending") != str(choice.path):
        if st.button(f"Delete dataset {choice.name}…", icon=":material/delete:",
                     key="dataset_delete", type="tertiary"):  # fmt: skip
            st.session_state["dataset_delete_pending"] = str(choice.path)
            st.rerun()
        return
    question = (f"Delete dataset {choice.name} and its {choice.info.total:,} images? "
                "This cannot be undone.")  # fmt: skip
    if confirmed("dataset_delete", str(choice.path), question):
        try:
            delete_dataset(choice.path, runs_training_on)
        except DatasetError as exc:
            st.error(f"Cannot delete: {exc}")
            return
        set_active_dataset(demo_dataset_dir())
        st.session_state["dataset_deleted"] = choice.name
        st.rerun()


def source_ui() -> tuple[object, Path | None, str]:
    """Where the dataset comes from: an uploaded .zip, or (locally) a folder on this computer.
    Returns (the upload, the folder, a name suggested by it); one of the first two is None."""
    policy = current_policy()
    folder_source = ["A folder on this computer"] if policy.allows_server_files else []
    if st.radio("Source", ["Upload a .zip", *folder_source], horizontal=True) == "Upload a .zip":
        upload = st.file_uploader("Dataset archive (.zip)", type=["zip"],
                                  max_upload_size=upload_limit_mb())  # fmt: skip
        if limits := policy.upload_limits_line():
            st.caption(limits)
        return upload, None, dataset_name_for(upload.name) if upload else ""
    text = st.text_input(
        "Folder path",
        placeholder="/home/me/Pictures/PetImages",
        help="A folder on the computer that runs catdog (when you run it locally).",
    )
    folder = Path(text).expanduser() if text.strip() else None
    return None, folder, dataset_name_for(text) if folder else ""


def split_ui() -> tuple[object, int]:
    """How to split the images: (``None`` to keep the source's, ``"seed"``, or train,
    validation and test fractions; the seed of a random split)."""
    how = st.radio("Split", list(SPLIT_CHOICES), format_func=SPLIT_CHOICES.get, horizontal=True)
    if how != "fractions":
        return {"keep": None, "seed": "seed"}[how], 0
    cols = st.columns(4)
    parts = [
        cols[k].number_input(f"{s.capitalize()} %", 1, 98, v, key=f"import_{s}")
        for k, (s, v) in enumerate(zip(SPLITS, (50, 25, 25), strict=True))
    ]
    seed = cols[3].number_input("Seed", 0, 10**6, 0, help="Same seed, same split.")
    return tuple(p / 100 for p in parts), int(seed)


def import_ui() -> tuple[Path | tuple[str, bytes], str, object, int] | None:
    """The import form; when submitted, returns (folder or (file name, bytes) of an uploaded
    .zip, dataset name, split, seed)."""
    upload, folder, suggested = source_ui()
    st.caption(
        "Layouts: class folders (`cats/`, `dogs/` …, split into train/validation/test or not), "
        "Kaggle's flat `cat.N.jpg`/`dog.N.jpg`, or Microsoft's `PetImages/Cat`, `PetImages/Dog`."
    )
    name = (
        st.text_input("Dataset name", placeholder=suggested or "my-pets", key="import_name")
        or suggested
    )
    split, seed = split_ui()
    ready = (upload is not None or folder is not None) and bool(name)
    clear = partial(st.session_state.pop, "import_report", None)  # a new import, a new report
    if not st.button("Import", type="primary", disabled=not ready, on_click=clear):
        return None
    source = (upload.name, upload.getvalue()) if upload is not None else folder
    return source, name, split, seed


def run_import(source: Path | tuple[str, bytes], name: str, split, seed: int) -> None:
    """Import with a progress bar; keep the summary in the session for the next reruns."""
    bar = st.progress(0.0, text="Starting the import…")

    def progress(done: int, total: int, message: str) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{message}: {done:,}/{total:,}")

    try:
        report, summary = import_named(source, name, split=split, seed=seed, progress=progress)
    except (DatasetError, HostedLimitError) as exc:
        bar.empty()
        st.error(f"Import failed: {exc}")
        return
    set_active_dataset(report.out)
    st.session_state["import_report"] = (summary, report.already_imported, len(report.skipped))
    st.rerun()


def show_report() -> None:
    """The last import's summary, with every skipped file and why."""
    if "import_report" not in st.session_state:
        return
    summary, already, skipped = st.session_state["import_report"]
    (st.info if already else st.success)(summary.splitlines()[0])
    with st.expander(f"Import report ({skipped:,} file(s) skipped)", expanded=skipped > 0):
        st.code(summary, language=None)


@st.cache_data(max_entries=16, show_spinner="Reading image sizes…")
def cached_sizes(root: str, version: float) -> list[dict]:
    """Every image's split, class, file and size; ``version`` keys the cache."""
    return size_rows(root)


# The charts are drawn once per dataset version and shared, unchanged, by every visitor.
@st.cache_resource(max_entries=16, show_spinner=False)
def counts_chart(rows: tuple[tuple[str, str, int], ...]) -> str:
    return split_counts_svg([dict(zip(("split", "class", "images"), r, strict=True))
                             for r in rows])  # fmt: skip


@st.cache_resource(max_entries=16, show_spinner=False)
def sizes_chart(root: str, version: float) -> str:
    return image_sizes_svg(cached_sizes(root, version))


def overview(info: DatasetInfo) -> None:
    """Counts per split and class, and the image size distribution (SVG: no chart library for
    the browser to load on the page most visitors open first)."""
    left, right = st.columns(2)
    left.markdown("**Images per split and class**")
    left.markdown(counts_chart(tuple(tuple(r.values()) for r in count_rows(info))),
                  unsafe_allow_html=True)  # fmt: skip
    sizes = cached_sizes(str(info.root), dataset_version(info.root))
    right.markdown("**Image sizes (pixels)**")
    if not sizes:
        right.info("No readable images.")
        return
    right.markdown(sizes_chart(str(info.root), dataset_version(info.root)), unsafe_allow_html=True)
    size = size_summary(sizes)
    right.caption(
        f"Widths {size['min_width']}–{size['max_width']} px (median {size['median_width']}), "
        f"heights {size['min_height']}–{size['max_height']} px (median {size['median_height']}); "
        "training squashes every image to the model's square input."
    )


def enlarge(path: Path) -> None:
    """The image, 480 px wide, with its pixel size, format and folder."""
    try:
        details = image_details(path)
        preview = preview_image(path)
    except ImageError as exc:  # its message names the file and what is wrong with it
        st.warning(literal(str(exc)))
        return
    except OSError as exc:  # e.g. removed meanwhile
        st.warning(f"{literal(path.name)} cannot be read: {exc.strerror or exc}")
        return
    st.image(preview, width=480)  # small images enlarged, big ones shrunk
    st.caption(
        f"{details['file']} — {details['width']}×{details['height']} px, {details['format']}, "
        f"{details['bytes'] / 1024:,.0f} KB — {path.parent.parent.name}/{path.parent.name}"
    )


def grid(info: DatasetInfo) -> None:
    """A paged thumbnail grid, filtered by split and class; a button enlarges an image."""
    left, right, _ = st.columns([1, 1, 2])
    split = left.selectbox("Split", SPLITS, key="browse_split")
    cls = right.selectbox("Class", ["all classes", *info.classes], key="browse_class")
    files = list_images(info.root, split, None if cls == "all classes" else cls)
    per_page = GRID_COLUMNS * GRID_ROWS
    st.caption(f"{len(files):,} images")
    page = st.pagination(page_count(len(files), per_page), key=f"browse_page_{split}_{cls}")
    cells = st.columns(GRID_COLUMNS)
    for k, path in enumerate(page_items(files, page, per_page)):
        with cells[k % GRID_COLUMNS]:
            st.image(thumb(path), width="stretch")
            if st.button(
                path.name,
                key=f"enlarge_{path}",
                icon=":material/zoom_in:",
                type="tertiary",
                help="Enlarge",
            ):
                st.dialog(path.name, width="medium")(enlarge)(path)


st.title("Dataset")
if deleted := st.session_state.pop("dataset_deleted", None):
    st.success(f"Dataset {deleted} was deleted.")
choose_ui()
if read_only():  # no import, no deletion, no review decisions, no new dataset: only looking
    browse_tab, health_tab = st.container(), None
else:
    delete_ui()
    show_report()
    show_result()
    browse_tab, health_tab, import_tab, new_tab = st.tabs(
        ["Browse", "Data health", "Import a dataset", "New dataset"]
    )
    with import_tab:
        request = import_ui()
        if request is not None:
            run_import(*request)
    with new_tab:
        builder_ui()
with browse_tab:
    info = require_dataset()
    overview(info)
    st.subheader("Images")
    grid(info)
if health_tab is not None:
    with health_tab:
        health_ui(info)
