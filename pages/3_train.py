"""Train: choose a model and its settings, train in the background, watch it learn."""

from ui.frame import enter_page

enter_page()  # first: the workspace and the error guard, or a rerun through app.py

import streamlit as st

from catdog import job_status
from catdog.data.datasets import DatasetInfo
from catdog.data.paths import demo_dataset_dir
from catdog.jobs import TrainingJob, manager
from catdog.model.backbones import BACKBONES
from catdog.model.errors import ModelError
from catdog.policy import HostedLimitError, current_policy
from catdog.train.augment import AugmentConfig
from catdog.train.config import (
    LR_SCHEDULES,
    SPEC_DEFAULTS,
    TrainConfig,
    TrainingError,
    widget_args,
)
from catdog.train.distribute import LOCAL_STRATEGIES, STRATEGY_HELP
from catdog.train.input_size import choose_image_size
from catdog.train.precision import PRECISIONS, cached_choice, epochs_in_budget, gpu_visible
from catdog.train.presets import PRESETS, RECOMMENDED, get_preset, recommended_model
from catdog.train.recommend import Recommendation, recommend
from catdog.train.summaries import known_summary
from ui.frame import READ_ONLY_NOTE, read_only
from ui.job_view import resume_ui, watched_ui
from ui.pretrained_view import pretrained_ui
from ui.shared import WATCHED_RUN, augmentation, require_dataset

KEEP = {"persist_state": "session"}  # a setting outlives a visit to another page
RECOMMENDED_FOR = "train_recommended_for"  # the dataset whose recipe was last pre-selected


def model_defaults() -> None:
    """Load the chosen model's Preset defaults into the settings widgets (within hosted
    mode's caps, if it is on)."""
    spec = get_preset(st.session_state["train_model"])
    values = current_policy().capped_settings({name: getattr(spec, name) for name in SPEC_DEFAULTS})
    for name, value in values.items():  # settings without a widget simply go unused
        st.session_state[f"train_{name}"] = value
    st.session_state["train_steps_per_epoch"] = spec.steps_per_epoch or 0
    if spec.backbone:  # fine-tuning starts from the preset's layer, else the base's top block
        top = BACKBONES[spec.backbone].top_block
        st.session_state["train_fine_tune_from"] = spec.fine_tune_from or top


def use_demo_settings() -> None:
    """Button callback: load the demo dataset's suggested settings into the widgets."""
    from catdog.data.demo import SUGGESTED_EPOCHS, SUGGESTED_TRAINING

    epochs = SUGGESTED_EPOCHS.get(st.session_state["train_model"], 25)
    capped = current_policy().capped_settings({**SUGGESTED_TRAINING, "epochs": epochs})
    for name, value in capped.items():
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


def apply_recommendation(rec: Recommendation) -> None:
    """Load a recommended recipe into the settings widgets: its model's defaults, then its
    own settings."""
    st.session_state["train_model"] = rec.model
    model_defaults()
    for name, value in rec.settings.items():
        st.session_state[f"train_{name}"] = value


def recommendation_ui(info: DatasetInfo) -> str:
    """The recipe recommended for this dataset, pre-selected once per dataset, and why;
    returns the recommended model (catdog-net's where none is: the demo)."""
    rec = recommend(info)
    if rec is None:
        return RECOMMENDED
    if st.session_state.get(RECOMMENDED_FOR) != str(info.root):
        st.session_state[RECOMMENDED_FOR] = str(info.root)
        apply_recommendation(rec)
    st.info(f"**Recommended: {rec.model}.** {rec.reason}.", icon=":material/recommend:")
    st.button("Use the recommended settings", icon=":material/recommend:",
              on_click=apply_recommendation, args=(rec,), key="train_use_recommended")  # fmt: skip
    return rec.model


def model_ui(info: DatasetInfo, recommended: str) -> str:
    """The model to train, with its description; choosing one loads its default settings."""
    if "train_model" not in st.session_state:  # first visit: the seed's story on the demo
        st.session_state["train_model"] = recommended_model(is_demo(info))
    model = st.selectbox(
        "Model", list(PRESETS), key="train_model", on_change=model_defaults, **KEEP,
        format_func=lambda name: f"{name} (recommended)" if name == recommended else name,
    )  # fmt: skip
    if any(f"train_{name}" not in st.session_state for name in SPEC_DEFAULTS):
        model_defaults()
    st.caption(get_preset(model).description)
    return model


def basics_ui(caps: dict[str, float]) -> dict[str, int | float]:
    """Epochs, batch size, image size, learning rate, dropout and steps per epoch."""
    # fmt: off
    a, b, c = st.columns(3)
    epochs = a.number_input(**widget_args("epochs", max_value=caps["epochs"]),
                            key="train_epochs", **KEEP)
    batch = b.number_input(**widget_args("batch_size", max_value=caps["batch_size"]),
                           key="train_batch_size", **KEEP)
    size = c.number_input(**widget_args("image_size", max_value=caps["image_size"]),
                          key="train_image_size", **KEEP)
    rate_widget = widget_args("learning_rate")  # the preset's own rate is offered too
    rate_widget["options"] = sorted({*rate_widget["options"],
                                     st.session_state["train_learning_rate"]})
    rate = st.select_slider(**rate_widget, key="train_learning_rate",
                            format_func=lambda v: f"{v:g}", **KEEP)
    a, b = st.columns(2)
    dropout = a.slider(**widget_args("dropout"), key="train_dropout", **KEEP)
    steps = b.number_input(**widget_args("steps_per_epoch"), key="train_steps_per_epoch", **KEEP)
    return {"epochs": int(epochs), "batch_size": int(batch), "image_size": int(size),
            "learning_rate": float(rate), "dropout": float(dropout),
            "steps_per_epoch": int(steps)}
    # fmt: on


def schedule_ui(caps: dict[str, float]) -> dict[str, int | float | str]:
    """Early stopping, the time limit, the learning-rate schedule and the seed."""
    # fmt: off
    a, b = st.columns(2)  # two to a row: the settings column is narrow beside the model table
    patience = a.number_input(**widget_args("early_stopping", value=0), key="train_patience",
                              **KEEP)
    limit = b.number_input(**widget_args("time_limit_minutes", min_value=caps["min_minutes"],
                                         max_value=caps["minutes"]),
                           format="%g", key="train_time_limit_minutes", **KEEP)
    if caps_line := current_policy().training_caps_line():
        st.caption(caps_line)
    a, b = st.columns(2)
    schedule = a.selectbox("LR schedule", LR_SCHEDULES, key="train_lr_schedule", **KEEP)
    seed = b.number_input(**widget_args("seed", value=0), key="train_seed", **KEEP)
    return {"early_stopping": int(patience), "time_limit_minutes": float(limit),
            "lr_schedule": schedule, "seed": int(seed)}
    # fmt: on


def regularisation_ui(model: str) -> dict[str, float]:
    """Label smoothing and (for AdamW models) weight decay, in an expander."""
    optimizer = get_preset(model).optimizer
    adamw = optimizer == "adamw"
    # fmt: off
    with st.expander("Regularisation: label smoothing, weight decay"):
        a, b = st.columns(2)
        smoothing = a.number_input(**widget_args("label_smoothing"), format="%g",
                                   key="train_label_smoothing", **KEEP)
        not_adamw = {} if adamw else {"help": f"Only AdamW takes it; {model} trains with "
                                              f"{optimizer}."}
        decay = b.number_input(**widget_args("weight_decay", **not_adamw), format="%g",
                               key="train_weight_decay", disabled=not adamw, **KEEP)
    # fmt: on
    return {"label_smoothing": float(smoothing), "weight_decay": float(decay) if adamw else 0.0}


def augment_ui(model: str) -> dict[str, bool | AugmentConfig]:
    """Whether to augment, and with the model's preset or the Augmentation page's settings."""
    augment = st.toggle("Data augmentation", key="train_augment", **KEEP)
    aug = augmentation()
    preset = get_preset(model).augmentation
    if augment and preset is not None:
        choices = ["the model's preset", "the Augmentation page's"]
        source = st.radio("Augmentation settings", choices, horizontal=True,
                          key="train_aug_source", **KEEP)  # fmt: skip
        aug = preset if source == choices[0] else aug
    if augment:
        st.caption(aug.describe().capitalize())
    return {"augment": bool(augment), "augmentation": aug}


def settings_ui(info: DatasetInfo) -> tuple[TrainConfig, bool]:
    """Model and training settings (defaults from the model's Preset), and whether training
    can start with them (a pretrained model's weights file may be wrong)."""
    model = model_ui(info, recommendation_ui(info))
    caps = current_policy().training_bounds()
    basics = basics_ui(caps)
    schedule = schedule_ui(caps)
    size, batch = basics["image_size"], basics["batch_size"]
    precision = precision_ui(model, size, batch)
    budget_ui(model, size, batch, precision, schedule["time_limit_minutes"], basics["epochs"],
              info)  # fmt: skip
    regularisation = regularisation_ui(model)
    augment = augment_ui(model)
    pretrained, usable = pretrained_ui(model, basics["epochs"], bool(augment["augment"]))
    strategy = strategy_ui()
    # The preset's own size may be fitted to the machine's speed (see budget_ui); another is kept.
    fit = size == get_preset(model).image_size
    config = TrainConfig(data=str(info.root), model=model, precision=precision, **basics,
                         **schedule, **regularisation, **augment, **pretrained,
                         strategy=strategy, fit_image_size=fit)  # fmt: skip
    return config, usable


def strategy_ui() -> str:
    """Where to train (an advanced setting): one device, or a replica on every GPU."""
    policy = current_policy()
    choices = policy.strategies or LOCAL_STRATEGIES
    with st.expander("Advanced: devices"):
        choice = st.selectbox("Strategy", choices, key="train_strategy", **KEEP,
                              format_func=lambda s: f"{s}: {STRATEGY_HELP[s]}",
                              help="With R replicas the batch size is per replica (a step "
                              "takes R × batch images) and the learning rate is R × the "
                              "setting, after at least R − 1 epochs of warm-up.")  # fmt: skip
        if policy.strategies is None:
            st.caption("Several machines: run `python -m catdog train --strategy "
                       "multiworker --workers HOST:PORT,... --task-index K --run-id NAME` "
                       "on each.")  # fmt: skip
    return str(choice)


def precision_ui(model: str, size: int, batch: int) -> str:
    """The arithmetic to train in, with what ``auto`` chose on this machine if it has timed
    this model shape before."""
    a, b = st.columns([2, 3], vertical_alignment="center")
    offered = current_policy().precisions or [
        p for p in PRECISIONS if p != "float16" or gpu_visible()
    ]
    choice = a.selectbox("Precision", offered,
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
    counts = info.totals["train"], info.totals["validation"]
    fit = epochs_in_budget(limit, speed, *counts, epochs)
    text = (
        f"At {speed:.0f} training images/s, about **{fit} of {epochs} epochs at {size} px** "
        f"fit the {limit:g}-minute limit on this machine"
    )
    if smaller := choose_image_size(model, size, epochs, limit, speed, *counts):
        text += (
            f": too few for {size} px, so it trains at **{smaller.image_size} px, about "
            f"{smaller.epochs_at_chosen_size} epochs** (measured more accurate on a machine "
            "this slow)"
        )
    st.caption(text + ("; the learning-rate schedule is fitted to them." if fit < epochs else "."))


@st.cache_data(max_entries=32, show_spinner="Building the model…")
def model_summary(model: str, image_size: int, num_classes: int, dropout: float) -> list[dict]:
    network = get_preset(model).network
    if (known := known_summary(network, image_size, num_classes, dropout)) is not None:
        return known  # a preset as it comes: no TensorFlow needed to show it
    from catdog.model.registry import build_model, summary_rows

    built = build_model(network, image_size=image_size, num_classes=num_classes, dropout=dropout)
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


def start_ui(config: TrainConfig, job: TrainingJob | None, buildable: bool) -> None:
    """The Start button, with what the server does with a second run; starting one watches it."""
    busy = job is not None and job.running
    if (limit := manager().limit()) is not None:
        st.caption(job_status.capacity_line(limit, *manager().load()))
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


st.title("Train")
if read_only():
    st.info(READ_ONLY_NOTE, icon=":material/visibility:")
    st.stop()
info = require_dataset()
job = watched_ui()
resume_ui()
st.subheader("New run")
st.caption(
    f"On **{info.name}**: {', '.join(info.classes)} — "
    f"{info.totals['train']:,} training and {info.totals['validation']:,} validation images."
)
demo_hint_ui(info)
settings_col, summary_col = st.columns([5, 6], gap="large")
with settings_col:
    config, usable = settings_ui(info)
with summary_col:
    buildable = summary_ui(config, len(info.classes))
start_ui(config, job, buildable and usable)
