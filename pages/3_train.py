"""Train: choose a model and its settings, train in the background, watch it learn."""

import streamlit as st

from catdog import hosting
from catdog.data.datasets import DatasetInfo
from catdog.data.paths import demo_dataset_dir
from catdog.hosting import HostedLimitError, capped_settings
from catdog.model.registry import RECOMMENDED, REGISTRY, ModelError, get_spec, recommended_model
from catdog.train.config import LR_SCHEDULES, SPEC_DEFAULTS, TrainConfig, TrainingError
from catdog.train.history import batch_progress, curves_figure, epoch_progress, job_line
from catdog.train.jobs import JobSnapshot, TrainingJob, manager
from catdog.train.precision import PRECISIONS, cached_choice, epochs_in_budget, gpu_visible
from catdog.train.runs import can_resume, list_runs
from pages.shared import (
    PAGES,
    WATCHED_RUN,
    augmentation,
    enter_workspace,
    guarded,
    require_dataset,
    start_resume,
)

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def model_defaults() -> None:
    """Load the chosen model's ModelSpec defaults into the settings widgets (within hosted
    mode's caps, if it is on)."""
    spec = get_spec(st.session_state["train_model"])
    values = capped_settings({name: getattr(spec, name) for name in SPEC_DEFAULTS})
    for name, value in values.items():  # settings without a widget simply go unused
        st.session_state[f"train_{name}"] = value
    st.session_state["train_steps_per_epoch"] = spec.steps_per_epoch or 0


def use_demo_settings() -> None:
    """Button callback: load the demo dataset's suggested settings into the widgets."""
    from catdog.data.demo import SUGGESTED_EPOCHS, SUGGESTED_TRAINING

    epochs = SUGGESTED_EPOCHS.get(st.session_state["train_model"], 25)
    for name, value in capped_settings({**SUGGESTED_TRAINING, "epochs": epochs}).items():
        st.session_state[f"train_{name}"] = value


def is_demo(info: DatasetInfo) -> bool:
    """Whether the dataset is the built-in demo cartoons."""
    return info.root.resolve() == demo_dataset_dir().resolve()


def demo_hint_ui(info: DatasetInfo) -> None:
    """On the demo data, offer settings that tell the seed's story in minutes."""
    if not is_demo(info):
        return
    st.info(
        "On the demo cartoons the seed's own settings barely get going. At 96 px and learning "
        "rate 0.001, **seed-baseline** overfits within 25 epochs and **seed-dropout** with "
        "augmentation does not — a few minutes each. (Measured on the default 600 training "
        "cartoons: 100% training but 81% validation accuracy, against 90% validation.)"
    )
    st.button("Use the demo settings", icon=":material/tune:", on_click=use_demo_settings)


def settings_ui(info: DatasetInfo) -> TrainConfig:
    """Model and training settings; defaults come from the model's ModelSpec."""
    keep = {"persist_state": "session"}
    if "train_model" not in st.session_state:  # first visit: the seed's story on the demo
        st.session_state["train_model"] = recommended_model(is_demo(info))
    model = st.selectbox(
        "Model", list(REGISTRY), key="train_model", on_change=model_defaults, **keep,
        format_func=lambda name: f"{name} (recommended)" if name == RECOMMENDED else name,
    )  # fmt: skip
    if any(f"train_{name}" not in st.session_state for name in SPEC_DEFAULTS):
        model_defaults()
    st.caption(get_spec(model).description)
    if get_spec(model).backbone:  # a pretrained model: what it downloads, whether it is here
        from catdog.model.weights import weights_status

        st.caption(weights_status(model))
    caps = hosted_caps()
    # fmt: off
    a, b, c = st.columns(3)
    epochs = a.number_input("Epochs", 1, caps["epochs"], key="train_epochs", **keep)
    batch = b.number_input("Batch size", 1, caps["batch_size"], key="train_batch_size", **keep)
    size = c.number_input("Image size (px)", 32, caps["image_size"], step=2,
                          key="train_image_size", **keep,
                          help="Square input side; the seed uses 150, its convnet needs ≥ 46.")
    rates = sorted({*LEARNING_RATES, st.session_state["train_learning_rate"]})
    rate = st.select_slider("Learning rate", rates, key="train_learning_rate",
                            format_func=lambda v: f"{v:g}", **keep)
    a, b = st.columns(2)
    dropout = a.slider("Dropout before the output layer", 0.0, 0.9, step=0.05,
                       key="train_dropout", **keep)
    steps = b.number_input("Steps per epoch", 0, 10_000, key="train_steps_per_epoch", **keep,
                           help="Batches per epoch; 0 = one pass over the training images. The "
                           "seed's augmented run used 100 steps of 32 images.")
    a, b = st.columns(2)  # two to a row: the settings column is narrow beside the model table
    patience = a.number_input("Early stopping", 0, 100, 0, key="train_patience", **keep,
                              help="Patience: stop after this many epochs without a better "
                              "validation loss; 0 = off.")
    limit = b.number_input("Time limit (min)", caps["min_minutes"], caps["minutes"], step=5.0,
                           format="%g",
                           key="train_time_limit_minutes", **keep,
                           help="Train for at most this long: the learning-rate schedule is "
                           "fitted to the epochs that fit, Epochs being the most. 0 = none.")
    if hosting.hosted():
        st.caption(f"Hosted demo: at most {caps['epochs']} epochs, {caps['image_size']} px, "
                   f"batch {caps['batch_size']} and {caps['minutes']:g} minutes per run.")
    a, b = st.columns(2)
    schedule = a.selectbox("LR schedule", LR_SCHEDULES, key="train_lr_schedule", **keep)
    seed = b.number_input("Seed", 0, 10**6, 0, key="train_seed", **keep)
    precision = precision_ui(model, int(size), int(batch))
    budget_ui(model, int(size), int(batch), precision, float(limit), int(epochs), info)
    with st.expander("Regularisation: label smoothing, weight decay, mixup"):
        a, b = st.columns(2)
        smoothing = a.number_input("Label smoothing", 0.0, 0.5, step=0.05, format="%g",
                                   key="train_label_smoothing", **keep,
                                   help="Train towards 0.05/0.95 instead of 0/1 (at 0.1): "
                                   "less over-confident. The seed: 0.")
        adamw = get_spec(model).optimizer == "adamw"
        decay = b.number_input("Weight decay", 0.0, 0.5, step=0.01, format="%g",
                               key="train_weight_decay", disabled=not adamw, **keep,
                               help="AdamW's decoupled weight decay: each step every weight "
                               "shrinks by learning rate × this." if adamw else
                               f"Only AdamW takes it; {model} trains with "
                               f"{get_spec(model).optimizer}.")
        c, _ = st.columns(2)
        mixup = c.number_input("Mixup α", 0.0, 10.0, step=0.1, format="%g", key="train_mixup",
                               **keep, help="Train on blends of two images, labelled with the "
                               "same blend (shares from Beta(α, α)); 0 = off, 0.2 is light.")
    # fmt: on
    augment = st.toggle("Data augmentation", key="train_augment", **keep)
    aug = augmentation()
    preset = get_spec(model).augmentation
    if augment and preset is not None:
        choices = ["the model's preset", "the Augmentation page's"]
        source = st.radio("Augmentation settings", choices, horizontal=True,
                          key="train_aug_source", **keep)  # fmt: skip
        aug = preset if source == choices[0] else aug
    if augment:
        st.caption(aug.describe().capitalize())
    return TrainConfig(
        data=str(info.root), model=model, epochs=int(epochs), batch_size=int(batch),
        learning_rate=float(rate), image_size=int(size), augment=bool(augment),
        augmentation=aug, dropout=float(dropout), steps_per_epoch=int(steps),
        early_stopping=int(patience), lr_schedule=schedule, seed=int(seed),
        time_limit_minutes=float(limit), label_smoothing=float(smoothing),
        weight_decay=float(decay) if adamw else 0.0, mixup=float(mixup), precision=precision,
    )  # fmt: skip


def hosted_caps() -> dict[str, float]:
    """The settings widgets' bounds: hosted mode's caps, or the local ones."""
    if not hosting.hosted():
        return {"epochs": 1000, "batch_size": 512, "image_size": 512, "minutes": 10_000.0,
                "min_minutes": 0.0}  # fmt: skip
    limits = hosting.settings()
    return {"epochs": limits.max_epochs, "batch_size": limits.max_batch_size,
            "image_size": limits.max_image_size, "minutes": float(limits.max_training_minutes),
            "min_minutes": min(1.0, float(limits.max_training_minutes))}  # fmt: skip


def precision_ui(model: str, size: int, batch: int) -> str:
    """The arithmetic to train in, with what ``auto`` chose on this machine if it has timed
    this model shape before."""
    a, b = st.columns([2, 3], vertical_alignment="center")
    choice = a.selectbox("Precision", [p for p in PRECISIONS if p != "float16" or gpu_visible()],
                         key="train_precision", persist_state="session",
                         help="The arithmetic of the hidden layers. auto times float32 and "
                         "bfloat16 on this machine once and takes the faster: bfloat16 is "
                         "about 3× faster on CPUs with AMX, can be slower on others, and does "
                         "not run at all on AVX2-only CPUs.")  # fmt: skip
    if choice == "auto":
        known = cached_choice(model, size, batch)
        b.caption(
            f"On this machine auto picks **{known.reason}** (measured {known.measured})."
            if known
            else "auto times both when training starts (about half a minute, once)."
        )
    return choice


def budget_ui(model: str, size: int, batch: int, precision: str, limit: float, epochs: int,
              info: DatasetInfo) -> None:  # fmt: skip
    """What the time limit buys on this machine, once its speed for this model is known."""
    known = cached_choice(model, size, batch)
    speed = known.speeds.get(known.precision if precision == "auto" else precision) if known else 0
    if not limit or not speed:
        return
    fit = epochs_in_budget(limit, speed, info.totals["train"], info.totals["validation"], epochs)
    st.caption(
        f"At {speed:.0f} training images/s, about **{fit} of {epochs} epochs at {size} px** "
        f"fit the {limit:g}-minute limit on this machine"
        + ("; the learning-rate schedule is fitted to them." if fit < epochs else ".")
    )


@st.cache_data(max_entries=32, show_spinner="Building the model…")
def model_summary(model: str, image_size: int, num_classes: int, dropout: float) -> list[dict]:
    from catdog.model.registry import build_model, summary_rows

    built = build_model(model, image_size=image_size, num_classes=num_classes, dropout=dropout)
    return summary_rows(built)


def _per_image(shape: str) -> str:
    """``"(batch, 56, 56, 32)"`` → ``"56 × 56 × 32"`` (the batch axis is the same everywhere)."""
    return shape.removeprefix("(batch, ").removesuffix(")").removesuffix(",").replace(", ", " × ")


def summary_ui(config: TrainConfig, num_classes: int) -> bool:
    """The model's layer table with Keras' total; returns False if it cannot be built."""
    try:
        rows = model_summary(config.model, config.image_size, num_classes, config.dropout)
    except (ModelError, ValueError) as exc:
        st.error(f"This model cannot be built with these settings: {exc}")
        return False
    shown = [{**row, "output_shape": _per_image(row["output_shape"])} for row in rows]
    st.dataframe(
        shown,
        hide_index=True,
        height=(len(rows) + 1) * 35 + 3,  # every layer, no scrolling
        column_config={  # narrow enough for the page's right column at 1280 px
            "layer": st.column_config.TextColumn("Layer", width=125),
            "type": st.column_config.TextColumn("Type", width=110),
            "output_shape": st.column_config.TextColumn(
                "Output", width=95, help="Per image: height × width × channels"
            ),
            "params": st.column_config.NumberColumn("Parameters", format="localized", width=85),
        },
    )
    st.markdown(f"**Total parameters: {sum(r['params'] for r in rows):,}**")
    return True


def queued_ui(snap: JobSnapshot) -> None:
    """A job waiting for a free training slot: its place, when it should start, a Cancel."""
    place = manager().position(snap.run_id)
    wait = manager().estimated_start(snap.run_id)
    when = f", so it should start in about {max(1, round(wait / 60))} min" if wait else ""
    st.info(
        f"Run `{snap.run_id}` is waiting for its turn: number {place} in the queue{when}. It "
        "starts by itself; you may leave this page or close the browser meanwhile.",
        icon=":material/hourglass_top:",
    )
    if st.button("Cancel", icon=":material/cancel:", key="cancel_queued"):
        manager().cancel(snap.run_id)
        st.rerun()


def draw(snap: JobSnapshot, job: TrainingJob) -> None:
    """Progress bars, metrics and live curves of one job."""
    if snap.state == "queued":
        queued_ui(snap)
        return
    finished = snap.finished and not job.running
    st.markdown(f"**Run `{snap.run_id}`** — {job_line(snap)}")
    if snap.precision:
        st.caption(snap.precision.capitalize())
    if snap.state == "loading" and snap.loading_total:
        done, total = snap.loading_done, snap.loading_total
        st.progress(done / total, text=f"Loading images: {done:,}/{total:,}")
    st.progress(*epoch_progress(snap))
    if (batches := batch_progress(snap)) is not None:
        st.progress(*batches)
    cols = st.columns(4)
    val = [r["val_accuracy"] for r in snap.history if "val_accuracy" in r]
    test = snap.metrics.get("test_accuracy")
    cols[0].metric("Elapsed", f"{snap.seconds:,.0f} s")
    cols[1].metric("Best validation accuracy", f"{max(val):.1%}" if val else "–")
    cols[2].metric("Last validation loss", f"{snap.history[-1]['val_loss']:.3f}" if val else "–")
    cols[3].metric("Test accuracy", f"{test:.1%}" if test is not None else "–")
    for col, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
        points = None if finished else snap.batch_points
        col.plotly_chart(curves_figure({snap.run_id: snap.history}, metric, batch_points=points),
                         key=f"live_{metric}")  # fmt: skip
    if not finished:
        if st.button("Stop training", icon=":material/stop_circle:", disabled=job.stop_requested):
            job.stop()
        if job.stop_requested:
            st.info("Stopping after the current batch…")
    elif snap.state == "failed":
        st.error(f"Training failed: {snap.error}")
    else:
        message = f"Run {snap.run_id} {snap.state} after {len(snap.history)} epoch(s)."
        (st.success if snap.state == "completed" else st.warning)(message)
        a, b, _ = st.columns([1, 1, 3])
        a.page_link(PAGES["history"], label="See it in History", icon=":material/monitoring:")
        b.page_link(PAGES["predict"], label="Predict with it", icon=":material/photo_camera:")


@st.fragment(run_every=1.0)
def live(run_id: str) -> None:
    """Redraw the watched job every second; one full rerun when it ends."""
    job = None
    with guarded("the Train page's live view"):
        enter_workspace(update_url=False)  # a fragment's rerun does not pass through app.py
        job = manager().get(run_id)
        if job is None:
            return
        draw(job.snapshot(), job)
    if job is not None and not job.running:
        st.rerun()


def watch_ui() -> TrainingJob | None:
    """The job this session watches, or buttons to watch jobs found in this process."""
    job = manager().get(st.session_state.get(WATCHED_RUN, ""))
    if job is not None:
        return job
    jobs = manager().all()
    offer = [j for j in jobs if j.running] + [j for j in reversed(jobs) if not j.running][:3]
    others = [r for r in list_runs() if r.state == "running" and manager().get(r.id) is None]
    for j in offer:
        snap = j.snapshot()
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"`{snap.run_id}` — {job_line(snap)}")
        if button.button("Watch", key=f"watch_{snap.run_id}", width="stretch"):
            st.session_state[WATCHED_RUN] = snap.run_id
            st.rerun()
    for run in others:
        st.info(
            f"Run {run.id} is training in another process (e.g. the command line); "
            "its curves are on the History page."
        )
    return None


def resume_ui() -> None:
    """Resume buttons for the runs that were interrupted, stopped or failed and can go on."""
    unfinished = [run for run in list_runs() if can_resume(run)][:5]
    if not unfinished:
        return
    st.subheader("Unfinished runs")
    for run in unfinished:
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"`{run.id}` — {run.state} after {run.epochs_done} of {run.epochs} epochs")
        if button.button("Resume", key=f"resume_{run.id}", icon=":material/play_arrow:",
                         width="stretch") and start_resume(run.id):  # fmt: skip
            st.rerun()  # the page now watches it
    st.divider()


st.title("Train")
info = require_dataset()
job = watch_ui()
if job is not None:
    if job.running:
        live(job.run_id)
    else:
        draw(job.snapshot(), job)
    st.divider()
resume_ui()
st.subheader("New run")
st.caption(
    f"On **{info.name}**: {', '.join(info.classes)} — "
    f"{info.totals['train']:,} training and {info.totals['validation']:,} validation images."
)
demo_hint_ui(info)
settings_col, summary_col = st.columns([5, 6], gap="large")
with settings_col:
    config = settings_ui(info)
with summary_col:
    buildable = summary_ui(config, len(info.classes))
busy = job is not None and job.running
if (limit := manager().limit()) is not None:
    training, waiting = manager().load()
    st.caption(
        f"This server trains {limit} run(s) at a time (now {training} training, {waiting} "
        "waiting); a new run waits for its turn in the queue."
    )
elif manager().active() and not busy:
    st.caption("Another run is training; a second one shares the CPU and both go slower.")
if st.button(
    "Start training",
    type="primary",
    icon=":material/play_arrow:",
    disabled=busy or not buildable,
    help="Stop (or cancel) the current run first." if busy else None,
):
    try:
        started = manager().start(config)
    except (TrainingError, ModelError, HostedLimitError, ValueError) as exc:
        st.error(f"Cannot start training: {exc}")
    else:
        st.session_state[WATCHED_RUN] = started.run_id
        st.rerun()
