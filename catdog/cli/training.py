"""The training commands: models, train (its flags generated from TrainConfig's fields), runs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, get_type_hints

from catdog.cli.common import EXIT_FAILED, EXIT_OK, CLIError, fmt_accuracy, resolve_dataset
from catdog.progress import TextProgress
from catdog.system import megabytes
from catdog.train.config import TrainConfig
from catdog.train.events import EventKind


def cmd_models(args: argparse.Namespace) -> int:
    from catdog.model.registry import build_model
    from catdog.train.presets import PRESETS

    rows = []
    for spec in PRESETS.values():
        params = build_model(spec.network, image_size=spec.image_size, dropout=spec.dropout)
        params = params.count_params()
        rows.append(
            (spec.name, f"{spec.image_size}×{spec.image_size}", f"{params:,}", spec.description)
        )
        if args.json:
            print(
                json.dumps(
                    {
                        "name": spec.name,
                        "image_size": spec.image_size,
                        "parameters": params,
                        "description": spec.description,
                    }
                )
            )
    if not args.json:
        width = max(16, *(len(row[0]) for row in rows))
        print(f"{'model':{width}} {'input':9} {'parameters':>11}  description")
        for name, size, params, desc in rows:
            print(f"{name:{width}} {size:9} {params:>11}  {desc}")
    return EXIT_OK


def _print_event(bar: TextProgress):
    """A progress listener for the terminal: a batch bar and one line per epoch."""

    def on_event(event: Any) -> None:
        if event.kind in (EventKind.PRECISION, EventKind.IMAGE_SIZE):
            print(event.message, file=sys.stderr)
        elif event.kind in ("loading", "features") and event.steps:
            bar(event.step, event.steps,
                "loading images" if event.kind == "loading" else "computing features")  # fmt: skip
        elif event.kind == "start":
            print(f"run {event.run_id}: {event.message}", file=sys.stderr)
        elif event.kind == "batch" and event.steps:
            logs = event.logs
            bar(
                event.step,
                event.steps,
                f"epoch {event.epoch}/{event.epochs} loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0):.4f}",
            )
        elif event.kind == "epoch":
            bar.close()
            logs = event.logs
            val = ""
            if "val_accuracy" in logs:
                val = f"  val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}"
            print(
                f"epoch {event.epoch:3d}/{event.epochs}  loss {logs['loss']:.4f} "
                f"acc {logs['accuracy']:.4f}{val}  {logs.get('seconds', 0):.1f}s",
                file=sys.stderr,
            )
        elif event.kind == "evaluating":
            print("evaluating the best model on the test split…", file=sys.stderr)
        elif event.kind == "end":
            bar.close()

    return on_event


def _check_dataset(data: Path, test: bool) -> None:
    """Refuse a dataset a run cannot learn from before anything is downloaded (as
    :func:`catdog.train.runs.create_run` does again); warn, with the counts, when its results
    would mislead (see :func:`catdog.data.datasets.check_trainable`)."""
    from catdog.data.datasets import check_trainable, scan_dataset

    for warning in check_trainable(scan_dataset(data), test=test):
        print(f"warning: {warning}", file=sys.stderr)


def _check_weights(config: TrainConfig) -> None:
    """A pretrained model's weights: found, or downloaded now (saying so), before any run folder
    is made; :class:`catdog.model.weights.WeightsMissing` says how to get them otherwise, and a
    file given with ``--weights`` that is not the base's weights is refused in one sentence."""
    from catdog.model.weights import check_weights_file, find_weights

    said = []

    def downloading(done: int, total: int) -> None:
        if not said:
            print(f"downloading {config.model}'s weights ({megabytes(total)})…", file=sys.stderr)
            said.append(True)

    from catdog.train.presets import get_preset

    network = get_preset(config.model).network
    path = find_weights(network, config.weights, on_progress=downloading)
    if config.weights and path is not None:
        check_weights_file(network, path)


def _check_run_id(run_id: str | None) -> None:
    if run_id is not None:
        from catdog.train.runs import check_run_id

        check_run_id(run_id)


def _check_new_run_id(run_id: str) -> None:
    from catdog.data.paths import runs_dir

    if (runs_dir() / run_id).exists():
        raise CLIError(f"a run {run_id} exists already; choose another --run-id")


def _join_cluster(args: argparse.Namespace, config: TrainConfig) -> bool:
    """For ``--strategy multiworker``: describe this process' place in the cluster
    (``TF_CONFIG``, built from ``--workers``/``--task-index`` if given) before TensorFlow
    starts; returns whether this process is a cluster worker."""
    from catdog.train.distribute import CLUSTER_ENV, cluster_from_env, workers_tf_config

    given = args.workers is not None or args.task_index is not None
    if given and config.strategy != "multiworker":
        raise CLIError("--workers and --task-index describe a cluster: add --strategy multiworker")
    if config.strategy != "multiworker":
        return False
    if given:
        if args.workers is None or args.task_index is None:
            raise CLIError("--workers and --task-index go together: the list of every worker's "
                           "HOST:PORT, and this machine's place in it (from 0)")  # fmt: skip
        os.environ["TF_CONFIG"] = workers_tf_config(args.workers, args.task_index)
    cluster = cluster_from_env()
    if args.run_id is None:
        raise CLIError("--strategy multiworker needs --run-id NAME, the same on every machine, "
                       "so that a restarted cluster finds its run again")  # fmt: skip
    os.environ[CLUSTER_ENV] = "1"
    print(f"worker {cluster['place']} of {cluster['workers']}: waiting for the others…",
          file=sys.stderr)  # fmt: skip
    return True


def _trainer(clustered: bool) -> Any:
    """The trainer module; in a cluster worker, importing it joins the cluster."""
    if not clustered:
        from catdog.train import trainer

        return trainer
    try:
        from catdog.train import trainer
    except Exception as exc:  # TensorFlow's own errors, e.g. a port that is taken
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CLIError(f"could not join the cluster ({first}); check TF_CONFIG or --workers") \
            from exc  # fmt: skip
    return trainer


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is None and args.data is None:
        raise CLIError("train needs --data DIR (or --resume RUN)")
    _check_run_id(args.run_id)
    config, clustered = None, False
    if args.resume is None:
        config = train_config(args).resolved()  # validated before TensorFlow is imported
        _check_dataset(Path(config.data), test=config.test)
        _check_weights(config)  # before any run folder is made
        clustered = _join_cluster(args, config)
        if args.run_id and not clustered:
            _check_new_run_id(args.run_id)

    trainer = _trainer(clustered)
    from catdog.inference.evaluate import final_test  # the test split, once training ends

    on_event = _print_event(TextProgress())
    with _stop_on_ctrl_c() as stop:
        if args.resume is not None:
            result = trainer.resume(args.resume, on_event=on_event, stop=stop, test_with=final_test)
        elif clustered:
            result = trainer.train_on_cluster(
                config, args.run_id, on_event=on_event, stop=stop, test_with=final_test
            )
        else:
            result = trainer.train(
                config, on_event=on_event, stop=stop, run_id=args.run_id, test_with=final_test
            )
    if result.state in ("completed", "stopped") and result.path.exists():
        _learn_trust(result.path)
    metrics = result.metrics
    best = metrics.get("best_val_accuracy")
    test = metrics.get("test_accuracy")
    print(
        f"{result.state}: {metrics.get('epochs_done')} epochs, best val_acc "
        f"{best if best is None else round(best, 4)}, test acc "
        f"{test if test is None else round(test, 4)}; files in "
        f"{result.path if result.path.exists() else 'the cluster chief’s run folder'}",
        file=sys.stderr,
    )
    print(result.run_id)
    return EXIT_OK if result.state in ("completed", "stopped") else EXIT_FAILED


def _learn_trust(run: Path) -> None:
    """After training: the run's calibration and "not sure" rule, said on standard error (a
    run whose rule cannot be learned still trained; predictions then go without)."""
    from catdog.inference.predict import learn_trust

    print("learning when to answer 'not sure'…", file=sys.stderr)
    try:
        print(learn_trust(run), file=sys.stderr)
    except (ValueError, OSError) as exc:
        print(f"warning: no 'not sure' rule: {exc}", file=sys.stderr)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training settings given on the command line (unset ones ``None``: the model's)."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**values | {"data": str(resolve_dataset(args.data))})


@contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """An event the first Ctrl-C sets (training stops after the batch); a second one aborts."""
    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl-C again to abort)…", file=sys.stderr)
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_runs(args: argparse.Namespace) -> int:
    from catdog.data.names import shown
    from catdog.train.runs import list_runs

    infos = list_runs()
    if args.json:
        fields = ("id", "model", "data", "state", "epochs_done", "epochs", "best_val_accuracy",
                  "test_accuracy", "error")  # fmt: skip
        for r in infos:
            print(json.dumps({f: getattr(r, f) for f in fields}))
        return EXIT_OK
    if not infos:
        print("no runs yet: try `python -m catdog train --data demo`")
        return EXIT_OK
    print(f"{'run':44} {'model':14} {'data':12} {'epochs':>7} {'best val':>8} {'test':>7} status")
    for r in infos:
        if r.damaged:  # its files cannot be read: say why instead of the numbers
            print(f"{shown(r.id):44} damaged: {shown(r.error or '')}")
            continue
        print(
            f"{shown(r.id):44} {shown(r.model):14} {shown(Path(r.data).name)[:12]:12} "
            f"{f'{r.epochs_done}/{r.epochs}':>7} {fmt_accuracy(r.best_val_accuracy):>8} "
            f"{fmt_accuracy(r.test_accuracy):>7} {r.state}"
        )
    return EXIT_OK


def _add_settings(
    p: argparse.ArgumentParser, names: tuple[str, ...] | None = None, unset: str = "model default"
) -> None:
    """One flag per :class:`~catdog.train.config.TrainConfig` setting (every one with a flag,
    or those in ``names``), spelled, typed and explained as the field says; ``unset`` says what
    leaving out a setting whose default is ``None`` means."""
    types = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        cli = f.metadata["cli"]
        if (names is not None and f.name not in names) or cli.get("flag", "") is None:
            continue
        flag = cli.get("flag") or "--" + f.name.replace("_", "-")
        kinds = getattr(types[f.name], "__args__", (types[f.name],))  # int | None: (int, None)
        kind = next(k for k in kinds if k is not type(None))
        default = None if f.default is MISSING else f.default
        help_text = f.metadata["help"]
        if f.default is None or default is not None:
            help_text += f" ({unset})" if default is None else f" (default {default})"
        if kind is bool and default is True:  # on unless switched off: --no-test
            p.add_argument(flag, dest=f.name, action="store_false", help=f.metadata["help"])
        elif kind is bool:
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                           default=None, help=help_text)  # fmt: skip
        else:
            p.add_argument(flag, dest=f.name, type=kind, default=default, help=help_text,
                           choices=cli.get("choices"), metavar=cli.get("metavar"))  # fmt: skip
        for alias, value in cli.get("aliases", {}).items():  # older spellings, not shown
            p.add_argument(alias, dest=f.name, action="store_const", const=value,
                           help=argparse.SUPPRESS)  # fmt: skip


def add_training_commands(sub: Any) -> None:
    """``models``, ``train`` (one flag per training setting, plus ``--resume``) and ``runs``."""
    p = sub.add_parser("models", help="list model architectures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model; prints the run id on the last line")
    _add_settings(p)
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    p.add_argument("--run-id", metavar="NAME", help="the new run's id instead of a fresh one; "
                   "with --strategy multiworker (needed there), the same on every machine: "
                   "run again, the command continues that run from its backup")  # fmt: skip
    p.add_argument("--workers", metavar="HOST:PORT,...", help="with --strategy multiworker: "
                   "every worker's address, the same list on every machine, the chief (which "
                   "writes the run folder) first; instead of TF_CONFIG")  # fmt: skip
    p.add_argument("--task-index", metavar="K", type=int,
                   help="with --workers: this machine's place in the list, from 0")  # fmt: skip
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list training runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
