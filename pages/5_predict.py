"""Predict: classify your own photos with a trained run."""

from ui.frame import enter_page

enter_page()  # first: the workspace and the error guard, or a rerun through app.py

import streamlit as st

from catdog.data.images import IMAGE_SUFFIXES, ImageError
from catdog.data.names import shown
from catdog.inference.predict import Prediction, Predictor
from catdog.inference.trust import SCORE_NAMES, Rule
from catdog.policy import HostedLimitError, current_policy
from catdog.train.runs import RunInfo, list_runs, model_file
from ui.frame import PAGES
from ui.predictions import card_images, classify
from ui.shared import damaged_ui, literal, model_choice, predictor, prefetch_predictor
from ui.uploads import upload_limit_mb

MAX_UPLOAD_MB = 50  # per photo; a phone photo is a few MB
CARD_COLUMNS = 3


def run_ui(runs: list[RunInfo]) -> tuple[RunInfo, str]:
    """Pick a run (the newest with a model by default, even while it trains: its best epoch
    so far) and its best or last model."""
    left, right = st.columns([3, 1])
    run = left.selectbox(
        "Run",
        runs,
        index=0,  # runs come newest first
        key="predict_run",
        format_func=lambda r: (
            f"{r.id} ({'shared example, ' if r.example else ''}{r.state}, {', '.join(r.classes)})"
        ),
    )
    which = model_choice(right, key="predict_which")
    if run.state == "running" and run.best_val_accuracy is not None:
        st.caption(
            f"Still training: its best model so far ({run.best_val_accuracy:.1%} validation "
            f"accuracy after {run.epochs_done} epoch(s)); it is replaced as better ones are saved."
        )
    return run, which


def photos_ui() -> list[tuple[str, bytes]]:
    """Uploaded photos and, behind a toggle, a camera shot, as (name, bytes)."""
    policy = current_policy()
    uploads = st.file_uploader(
        "Photos",
        type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES),
        accept_multiple_files=True,
        max_upload_size=upload_limit_mb(MAX_UPLOAD_MB),
        key="predict_uploads",
    )
    if policy.max_predict_photos is not None:
        st.caption(f"Hosted demo: at most {policy.max_predict_photos} photos at once.")
    photos = [(u.name, u.getvalue()) for u in uploads or []]
    if st.toggle("Take a photo with the camera", key="predict_camera"):
        # No max_upload_size on st.camera_input (Streamlit 1.67): server.maxUploadSize holds.
        shot = st.camera_input("Camera", label_visibility="collapsed")
        if shot is not None:
            photos.append(("camera photo", shot.getvalue()))
    return photos


def rule_ui(model: Predictor) -> Rule | None:
    """How often to answer "not sure": a slider over the share of the run's validation photos
    answered, with the threshold it sets. ``None`` when the run has no rule (saying why)."""
    trust = model.trust
    if trust is None:
        st.info(f"Every photo gets an answer and the probabilities are the model's own: "
                f"{literal(str(model.trust_problem))}.")  # fmt: skip
        return None
    share = st.slider(
        "Photos like the validation ones to answer", min_value=50, max_value=100,
        value=round(trust.rule.coverage * 100), step=1, format="%d%%", key="predict_coverage",
        help="Lower it and more photos get 'neither class / not sure'; at 100% nearly every "
        "photo gets a class. The run learned its threshold on its validation photos.",
    )  # fmt: skip
    rule = trust.rule.with_coverage(share / 100)
    st.caption(
        f"A photo whose {SCORE_NAMES[rule.score]} is above {rule.threshold:.3g} is answered "
        f"“neither class / not sure”. Probabilities are calibrated (temperature "
        f"{trust.temperature:.2f}, fitted on the validation photos)."
    )
    return rule


def card(prediction: Prediction, data: bytes, digest: str, heat: bool) -> None:
    """One photo (with its heatmap if asked and there is one), its class and a bar per class."""
    name = shown(prediction.file)  # one line, whatever the file's name holds
    heatmap = prediction.heatmap
    with st.container(border=True):
        plain, tinted = card_images(model_key, digest, name, heatmap is not None, data, heatmap)
        st.image(tinted if heat and tinted else plain, width="stretch")
        if prediction.answered:
            st.markdown(f"**{literal(str(prediction.label))}** — {literal(name)}")
        else:
            st.markdown(f"**Neither class / not sure** — {literal(name)}")
            st.caption(f"Not answered: {literal(str(prediction.reason))}.")
        for cls, p in sorted(prediction.probabilities.items(), key=lambda kv: -kv[1]):
            st.progress(p, text=f"{literal(cls)}: {p:.1%}")


st.title("Predict")
listed = list_runs()
runs = [r for r in listed if not r.damaged and model_file(r.path) is not None]
damaged_ui(listed)
if not runs:
    st.info("No trained model yet: train one first (a short run on the demo data is enough).")
    st.page_link(PAGES["train"], label="Go to the Train page", icon=":material/model_training:")
    st.stop()
run, which = run_ui(runs)
photos = photos_ui()
if not photos:
    st.caption(f"Upload photos to classify them as {' or '.join(run.classes)}.")
    if (waiting := model_file(run.path, which)) is not None:  # loaded while photos are picked
        prefetch_predictor(run.id, which, waiting.stat().st_mtime)
    st.stop()
try:
    current_policy().check_photos(len(photos))  # before loading the model
except HostedLimitError as exc:
    st.error(str(exc))
    st.stop()
path = model_file(run.path, which)
try:
    model = predictor(run.id, which, path.stat().st_mtime)
except (ValueError, OSError) as exc:
    st.error(f"The model of run {run.id} cannot be loaded: {exc}")
    st.stop()
rule = rule_ui(model)
show_heat = st.toggle(
    "Show where the model looked",
    value=True,
    key="predict_heatmaps",
    help="Grad-CAM: the regions whose features raised the score of the predicted class most "
    "are tinted, from blue (a little) to red (most); untinted regions did not argue for it.",
)
if show_heat:
    st.caption("Tinted where the model found evidence for its answer: red most, blue a little.")
model_key = (str(run.path), which, path.stat().st_mtime, repr(rule))
try:  # only photos this session has not had classified by this model and rule are decoded
    predictions, digests, no_heat = classify(model, model_key, photos, show_heat, rule)
except HostedLimitError as exc:  # over the upload or pixel caps (the camera's photo, say)
    st.error(str(exc))
    st.stop()
if no_heat and show_heat:
    st.warning(f"No heatmaps for this model: {no_heat}")
for bad in (p for p in predictions if not p.ok):
    st.warning(f"{literal(str(bad.error))} — skipped.", icon=":material/broken_image:")
good = [(p, data, digest) for p, (_, data), digest in zip(predictions, photos, digests,
                                                           strict=True) if p.ok]  # fmt: skip
for row in range(0, len(good), CARD_COLUMNS):
    for col, (prediction, data, digest) in zip(
        st.columns(CARD_COLUMNS), good[row : row + CARD_COLUMNS], strict=False
    ):
        with col:
            try:
                card(prediction, data, digest, show_heat)
            except ImageError as exc:
                st.warning(literal(str(exc)))
