"""The Dataset page's "Data health" tab: the audit's findings and the review queue.

The audit runs in the background (:mod:`catdog.audit_jobs`: it survives page switches), shown
with a progress bar and the time left (hosted mode stops it after its time limit; one audit at
a time per workspace); its report is cached per dataset version, so it runs once. Each image
a finding names gets a keep / drop / move choice, saved at once; "Write a new version" copies
the dataset with the choices applied, as a new dataset that then becomes the active one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from catdog.audit_jobs import audit_job, forget_audit, start_audit
from catdog.data.datasets import SPLITS, DatasetError, DatasetInfo
from catdog.data.health import CHEAP_FEATURES, AuditError, AuditReport, LabelFeatures, cached_audit
from catdog.data.review import Decision, apply_review, decide, load_review, next_version_name
from catdog.inference.audit_features import feature_runs, pretrained_features, run_features
from catdog.inference.cross_fit import FOLDS, cross_fitted
from catdog.paging import page_count, page_items
from catdog.policy import HostedLimitError, current_policy
from catdog.train.runs import RunError
from ui.shared import literal, set_active_dataset, thumb

PER_PAGE = 6  # findings shown at once
SECTIONS = ("Duplicates and leaks", "Suspect labels", "Odd images")
WRITTEN = "health_written"  # session key: the name of the version just written
# The label check chosen outlives a visit to another page and an audit in progress (when the
# tab does not draw it).
KEEP = {"persist_state": "session"}


def start_ui(info: DatasetInfo, features: LabelFeatures | None, refresh: bool) -> None:
    """Start the audit in the background and show its progress."""
    start_audit(info.root, features, refresh=refresh)
    st.rerun()


@st.fragment(run_every=1.0)
def progress_ui(root: Path) -> None:
    """A running audit's progress with the time left, and a Stop button; the whole page
    again once it has ended."""
    job = audit_job(root)
    if job is None or not job.running:
        st.rerun(scope="app")
        return
    snap = job.snapshot()
    st.progress(snap.fraction, text=snap.message)
    st.caption("The audit runs on the server: you can leave this page and come back.")
    if st.button("Stop the audit", key="health_stop"):
        job.stop()


def ended_ui(root: Path) -> None:
    """Say why the last audit of this dataset did not finish (once), then forget it."""
    job = audit_job(root)
    if job is None or job.running:
        return
    snap = job.snapshot()
    if snap.state == "failed":
        st.error(f"The audit could not finish: {literal(snap.error)}")
    elif snap.state == "stopped":
        st.info("The audit was stopped; its findings so far are not kept.")
    forget_audit(root)


def summary_ui(report: AuditReport) -> None:
    """The counts: duplicate pairs, leaks per split pair, suspects, odd images."""
    cols = st.columns(4)
    cols[0].metric("Duplicate pairs", f"{len(report.pairs):,}")
    cols[1].metric("Leaks across splits", f"{sum(report.leaks.values()):,}")
    cols[2].metric("Suspect labels", f"{len(report.suspects):,}")
    cols[3].metric("Odd images", f"{len(report.odd):,}")
    st.caption(
        "Leaks per split pair: "
        + ", ".join(f"{pair} {n:,}" for pair, n in report.leaks.items())
        + f". The label check ({report.label_model}) agrees with {report.agreement:.0%} of "
        "the labels on images it did not learn from: the lower that is, the more suspects "
        f"are merely hard photos. {report.images:,} images audited in {report.seconds:.0f} s."
    )
    for warning in report.warnings:
        st.warning(literal(warning))
    for item in report.unreadable[:5]:
        st.caption(f"Unreadable: {literal(item['reason'])}")


def choice_ui(info: DatasetInfo, file: str, saved: dict[str, Decision]) -> None:
    """Keep / drop / move for one image, saved when changed."""
    cls = file.split("/")[1]
    options = ["keep", "drop"] + [f"move to {c}" for c in info.classes if c != cls]
    current = saved.get(file, Decision("keep")).describe()

    def save() -> None:
        picked = st.session_state[f"review_{file}"]
        action, _, to = picked.partition(" to ")
        decide(info.root, file, "move" if to else action, to or None)

    st.selectbox(
        file, options, index=options.index(current) if current in options else 0,
        key=f"review_{file}", on_change=save, label_visibility="collapsed",
    )  # fmt: skip


def image_ui(info: DatasetInfo, file: str, caption: str, saved: dict[str, Decision]) -> None:
    """One image of a finding: thumbnail, caption, decision."""
    st.image(thumb(Path(info.root) / file), width="stretch")
    st.caption(literal(f"{file} — {caption}"))
    choice_ui(info, file, saved)


def pairs_ui(info: DatasetInfo, report: AuditReport, saved: dict[str, Decision]) -> None:
    """Duplicate pairs side by side, leaks first."""
    pairs = sorted(report.pairs, key=lambda p: (not p["leak"], -p["score"]))
    if not pairs:
        st.success("No duplicates: no two images are copies of each other.")
        return
    page = st.pagination(page_count(len(pairs), PER_PAGE), key="health_pairs_page")
    for pair in page_items(pairs, page, PER_PAGE):
        where = f"leak {pair['leak']}" if pair["leak"] else "same split"
        st.markdown(f"**{where}** — {pair['kind']} duplicate, likeness {pair['score']:.3f}")
        left, right, _ = st.columns([1, 1, 2])
        with left:
            image_ui(info, pair["a"], "first", saved)
        with right:
            image_ui(info, pair["b"], "second", saved)


def suspects_ui(info: DatasetInfo, report: AuditReport, saved: dict[str, Decision]) -> None:
    """Suspect labels split by split, most confidently wrong first."""
    counts = {split: len(report.in_split(split)) for split in SPLITS}
    split = st.radio(
        "Split", SPLITS, horizontal=True, key="health_suspects_split",
        format_func=lambda s: f"{s} ({counts[s]:,})",
        help="Each split is checked on its own: a wrong training label teaches the model a "
        "mistake, a wrong test label misstates its score.",
    )  # fmt: skip
    grid_ui(info, report.in_split(split or SPLITS[0]), f"health_suspects_page_{split}", saved,
            f"No suspect labels in {split}.",
            lambda item: f"labelled {item['given']}, looks like {item['predicted']} "
            f"({item['confidence']:.0%})")  # fmt: skip


def odd_ui(info: DatasetInfo, report: AuditReport, saved: dict[str, Decision]) -> None:
    """Tiny, stretched, blank and few-colour images."""
    grid_ui(info, report.odd, "health_odd_page", saved, "No odd images.",
            lambda item: "; ".join(item["reasons"]))  # fmt: skip


def grid_ui(
    info: DatasetInfo,
    items: list[dict[str, Any]],
    key: str,
    saved: dict[str, Decision],
    none: str,
    caption: Callable[[dict[str, Any]], str],
) -> None:
    """One finding per image, a page of :data:`PER_PAGE` at a time, each with its review
    choice; ``none`` said when there are none."""
    if not items:
        st.success(none)
        return
    page = st.pagination(page_count(len(items), PER_PAGE), key=key)
    cells = st.columns(PER_PAGE // 2)
    for k, item in enumerate(page_items(items, page, PER_PAGE)):
        with cells[k % len(cells)]:
            image_ui(info, item["file"], caption(item), saved)


def write_ui(info: DatasetInfo, saved: dict[str, Decision]) -> None:
    """The decisions so far and the button that writes them as a new dataset version."""
    drops = sum(d.action == "drop" for d in saved.values())
    moves = len(saved) - drops
    st.caption(
        f"Your review: {drops:,} to drop, {moves:,} to move (saved with the dataset). "
        f"{info.name} itself is never changed: a new version is written beside it."
    )
    name = st.text_input("New version's name", next_version_name(info.root), key="health_name")
    if not st.button("Write a new version", disabled=not saved, key="health_write"):
        return
    bar = st.progress(0.0, text="Writing the new version…")
    try:
        out = apply_review(info.root, name=name, progress=lambda d, t, m: bar.progress(d / t, m))
    except (DatasetError, HostedLimitError) as exc:
        bar.empty()
        st.error(f"Cannot write the new version: {exc}")
        return
    set_active_dataset(out)
    st.session_state[WRITTEN] = out.name
    st.rerun()


def features_ui(info: DatasetInfo) -> tuple[LabelFeatures | None, bool]:
    """What the label check learns from: the quick features, MobileNetV3Small's where its
    weights are here, or a trained run's on these classes; and whether that choice works."""
    choices: dict[str, str | None] = {CHEAP_FEATURES: None}
    if pretrained_features() is not None:
        choices["a pretrained base's features (MobileNetV3Small)"] = "pretrained"
    if not current_policy().hosted:
        choices[f"{FOLDS} catdog-net networks trained across folds (the strongest; minutes "
                "to an hour)"] = "cross-fit"  # fmt: skip
    for run in feature_runs(info.classes):
        choices[f"features of run {run.id}"] = run.id
    label = st.selectbox(
        "Check labels with", list(choices), key="health_features", **KEEP,
        help="A quick model on colour and gradient features agrees with about 7 in 10 photo "
        "labels; a network's features with far more. A run trained on these very labels may "
        "have learned a few wrong ones by heart. The strongest check without pretrained "
        f"weights trains {FOLDS} networks across folds, each judging the photos it never saw "
        "(on the seed's 2,000 training photos, about an hour on 2 CPU cores finds most wrong "
        "labels; also `python -m catdog audit DATASET --cross-fit MINUTES`).",
    )  # fmt: skip
    source = choices.get(label)
    if source is None:
        return None, True
    if source == "pretrained":
        return pretrained_features(), True
    if source == "cross-fit":
        minutes = st.number_input("Minutes in all", min_value=FOLDS, max_value=600, value=30,
                                  step=5, key="health_cross_fit_minutes", **KEEP)  # fmt: skip
        try:
            return cross_fitted(float(minutes)), True
        except AuditError as exc:
            st.error(f"The cross-fitted check cannot run: {exc}")
            return None, False
    try:
        return run_features(source), True
    except RunError as exc:
        st.error(f"That run's features cannot be used: {exc}")
        return None, False


def health_ui(info: DatasetInfo) -> None:
    """The whole tab."""
    if written := st.session_state.pop(WRITTEN, None):
        st.success(f"Wrote {written}, now the active dataset: train on it to compare.")
    job = audit_job(info.root)
    if job is not None and job.running:
        st.markdown(f"**Auditing {info.name}**" + (f" ({job.label_model})" if job.label_model
                                                   else ""))  # fmt: skip
        progress_ui(info.root)
        return
    ended_ui(info.root)
    features, usable = features_ui(info)
    if not usable:
        return
    report = cached_audit(info.root, features.name if features else CHEAP_FEATURES)
    again = report is not None and st.button("Audit again", key="health_again")
    if report is None or again:
        st.caption(
            "The audit reads every image once and looks for copies (also resized, cropped or "
            "mirrored), copies shared between splits (leaks), labels a quick model doubts, "
            "and odd images; it takes about half a minute per 1,000 images on 2 cores."
        )
        if again or st.button("Audit this dataset", type="primary", key="health_run"):
            start_ui(info, features, refresh=again)
        return
    summary_ui(report)
    saved = load_review(info.root)
    counts = (len(report.pairs), len(report.suspects), len(report.odd))
    section = st.segmented_control(
        "Findings", SECTIONS, default=SECTIONS[0], key="health_section",
        format_func=lambda s: f"{s} ({counts[SECTIONS.index(s)]:,})",
    )  # fmt: skip
    show = {SECTIONS[0]: pairs_ui, SECTIONS[1]: suspects_ui, SECTIONS[2]: odd_ui}
    show.get(section or SECTIONS[0], pairs_ui)(info, report, saved)
    st.divider()
    write_ui(info, saved)
