"""The command line: ``python -m catdog COMMAND ...`` — every headless task of catdog.

Human-readable progress and tables go to standard error or standard output as noted per
command; results that scripts read (a run id, ``--json`` output) go to standard output alone.
Heavy modules (TensorFlow) are imported inside the commands that need them, so ``--help``,
``runs`` and dataset commands start instantly.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, get_type_hints

from catdog.cli_builder import add_builder_commands
from catdog.failures import TrainingFailed
from catdog.progress import TextProgress
from catdog.train.config import TrainConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def resolve_dataset(value: str) -> Path:
    """Turn ``--data`` into a dataset folder: a path, a name under the data home, or ``demo``.

    ``demo`` (the built-in dataset) is generated on first use.
    """
    from catdog.data.paths import DEMO_DATASET_NAME, datasets_dir

    if value == DEMO_DATASET_NAME:
        from catdog.data.demo import ensure_demo_dataset

        return ensure_demo_dataset()
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    named = datasets_dir() / value
    if named.is_dir():
        return named
    raise CLIError(
        f"dataset {value!r} not found: it is neither a folder nor a dataset name in "
        f"{datasets_dir()} (see `python -m catdog datasets`)"
    )


def _default_out(source: Path) -> Path:
    from catdog.data.paths import datasets_dir

    stem = source.name.removesuffix(".zip") or "dataset"
    return datasets_dir() / stem


# ---------------------------------------------------------------- datasets


def cmd_import(args: argparse.Namespace) -> int:
    from catdog.data.importer import import_dataset, parse_split

    source = Path(args.source).expanduser()
    out = Path(args.out).expanduser() if args.out else _default_out(source)
    split = parse_split(args.split) if args.split else None
    bar = TextProgress()
    try:
        report = import_dataset(source, out, split=split, seed=args.seed, progress=bar)
    finally:
        bar.close()  # an error starts on a line of its own
    print(report.summary())
    return EXIT_OK


def cmd_download_petimages(args: argparse.Namespace) -> int:
    from catdog.data.download import download_petimages
    from catdog.data.importer import parse_split
    from catdog.data.paths import datasets_dir

    out = Path(args.out).expanduser() if args.out else datasets_dir() / "petimages"
    kwargs: dict[str, Any] = {"split": parse_split(args.split), "progress": TextProgress()}
    if args.url:
        kwargs["url"] = args.url
    if args.sha256:
        kwargs["sha256"] = args.sha256
    report = download_petimages(out, **kwargs)
    print(report.summary())
    return EXIT_OK


def cmd_demo_data(args: argparse.Namespace) -> int:
    from catdog.data.demo import generate_demo_dataset
    from catdog.data.paths import demo_dataset_dir

    out = Path(args.out).expanduser() if args.out else demo_dataset_dir()
    counts = tuple(int(x) for x in args.counts.split(",")) if args.counts else None
    kwargs: dict[str, Any] = {"seed": args.seed, "progress": TextProgress()}
    if counts:
        if len(counts) != 3:
            raise CLIError(f"--counts needs TRAIN,VAL,TEST per class, got {args.counts!r}")
        kwargs["counts"] = counts
    path = generate_demo_dataset(out, **kwargs)
    print(path)
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from catdog.data.datasets import list_datasets

    infos = list_datasets()
    if args.json:
        fields = ("name", "classes", "counts")
        for info in infos:
            print(json.dumps({"path": str(info.root)} | {f: getattr(info, f) for f in fields}))
        return EXIT_OK
    if not infos:
        print("no datasets yet: try `python -m catdog demo-data` or `python -m catdog import`")
    for info in infos:
        totals = ", ".join(f"{s} {sum(c.values())}" for s, c in info.counts.items())
        print(f"{info.name:24} {'/'.join(info.classes):20} {totals}   {info.root}")
    return EXIT_OK


# ---------------------------------------------------------------- models and training


def cmd_models(args: argparse.Namespace) -> int:
    from catdog.model.registry import REGISTRY, build_model

    rows = []
    for spec in REGISTRY.values():
        params = build_model(spec.name).count_params()
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
        if event.kind == "precision":
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
    """Refuse a dataset a run cannot learn from; warn, with the counts, when its results would
    mislead (see :func:`catdog.data.datasets.training_problems`)."""
    from catdog.data.datasets import scan_dataset, training_problems

    errors, warnings = training_problems(scan_dataset(data), test=test)
    if errors:
        raise CLIError(f"{data}: {errors[0]}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _check_weights(config: TrainConfig) -> None:
    """A pretrained model's weights: found, or downloaded now (saying so), before any run folder
    is made; :class:`catdog.model.weights.WeightsMissing` says how to get them otherwise, and a
    file given with ``--weights`` that is not the base's weights is refused in one sentence."""
    from catdog.model.weights import check_weights_file, find_weights

    said = []

    def downloading(done: int, total: int) -> None:
        if not said:
            print(f"downloading {config.model}'s weights ({total / 1e6:.1f} MB)…", file=sys.stderr)
            said.append(True)

    path = find_weights(config.model, config.weights, on_progress=downloading)
    if config.weights and path is not None:
        check_weights_file(config.model, path)


def _check_run_id(run_id: str | None) -> None:
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", run_id):
        raise CLIError(
            f"--run-id must be a name of letters, digits, '.', '_' and '-', got {run_id!r}"
        )


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
    on_event = _print_event(TextProgress())
    with _stop_on_ctrl_c() as stop:
        if args.resume is not None:
            result = trainer.resume(args.resume, on_event=on_event, stop=stop)
        elif clustered:
            result = trainer.train_on_cluster(config, args.run_id, on_event=on_event, stop=stop)
        else:
            result = trainer.train(config, on_event=on_event, stop=stop, run_id=args.run_id)
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


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def cmd_runs(args: argparse.Namespace) -> int:
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
            print(f"{r.id:44} damaged: {r.error}")
            continue
        print(
            f"{r.id:44} {r.model:14} {Path(r.data).name[:12]:12} "
            f"{f'{r.epochs_done}/{r.epochs}':>7} {_fmt(r.best_val_accuracy):>8} "
            f"{_fmt(r.test_accuracy):>7} {r.state}"
        )
    return EXIT_OK


# ---------------------------------------------------------------- evaluation and prediction


def cmd_evaluate(args: argparse.Namespace) -> int:
    from catdog.inference.evaluate import evaluate_run

    data = resolve_dataset(args.data) if args.data else None
    evaluation = evaluate_run(
        args.run, data, which=args.which, tta=args.tta, tta_zoom=args.tta_zoom
    )
    print(json.dumps(evaluation.to_dict()) if args.json else evaluation.summary())
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from catdog.data.names import shown
    from catdog.inference.predict import Predictor

    out = Path(args.heatmaps) if args.heatmaps else None
    if out is not None and out.exists() and not out.is_dir():
        raise CLIError(f"--heatmaps {out} exists and is not a folder")
    predictor = Predictor.from_run(args.run, which=args.which)
    predictions = predictor.predict([Path(p) for p in args.images], heatmaps=out is not None)
    failed = 0
    for pred in predictions:
        if pred.error:
            failed += 1
            print(f"error: {pred.error}", file=sys.stderr)
            if args.json:
                print(json.dumps(pred.to_dict()))
            continue
        data = pred.to_dict()
        if out is not None and pred.heatmap is not None:
            data["heatmap"] = str(_write_heatmap(out, Path(pred.file), pred.heatmap))
        if args.json:
            print(json.dumps(data))
        else:
            probs = "  ".join(f"{c} {p:.3f}" for c, p in pred.probabilities.items())
            where = f"  heatmap {shown(data['heatmap'])}" if "heatmap" in data else ""
            print(f"{shown(pred.file)}: {pred.label}   ({probs}){where}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from catdog.inference.export import export_run

    print("exporting and checking the export against the run's model…", file=sys.stderr)
    result = export_run(args.run, args.format, args.out, quantize=args.quantize, which=args.which)
    print(result.summary(), file=sys.stderr)
    print(result.path)
    return EXIT_OK


def _write_heatmap(folder: Path, image: Path, heat: Any) -> Path:
    """Save ``image`` with ``heat`` over it as a new PNG in ``folder`` (never overwriting)."""
    from catdog.data.images import open_rgb
    from catdog.data.names import portable_name
    from catdog.inference.explain import overlay

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / portable_name(image.stem, ".heatmap.png")
    n = 1
    while target.exists():
        n += 1
        target = folder / portable_name(image.stem, f".heatmap-{n}.png")
    overlay(open_rgb(image), heat).save(target)
    return target


# ---------------------------------------------------------------- parser


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


def _add_dataset_commands(sub: Any) -> None:
    """``import``, ``download-petimages``, ``demo-data`` and ``datasets``."""
    p = sub.add_parser("import", help="import a folder or .zip of images as a dataset")
    p.add_argument("source", help="folder or .zip: folder-per-class, Kaggle flat, or PetImages")
    p.add_argument("--out", help="dataset folder to create (default: <data home>/datasets/NAME)")
    p.add_argument(
        "--split",
        help="'seed' (1000/500/500 per class by file number) or "
        "TRAIN,VAL,TEST fractions (default: keep existing split, else 50,25,25)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for fractional splits (default 0)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "download-petimages",
        help="download Microsoft's Cats-and-Dogs archive (~800 MB) and import it",
    )
    p.add_argument("--out", help="dataset folder (default: <data home>/datasets/petimages)")
    p.add_argument("--split", default="seed", help="as for import (default: seed)")
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--sha256", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_download_petimages)

    p = sub.add_parser("demo-data", help="generate the built-in synthetic demo dataset")
    p.add_argument("--out", help="dataset folder (default: <data home>/datasets/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--counts", help="images per class as TRAIN,VAL,TEST")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("datasets", help="list datasets in the data home")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)


def _add_training_commands(sub: Any) -> None:
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


def _add_model_commands(sub: Any) -> None:
    """``evaluate``, ``predict`` and ``export``: what a trained run's model does."""
    p = sub.add_parser("evaluate", help="evaluate a run on its test split or another folder")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--data", help="folder-per-class DIR (with or without test/) to evaluate on")
    p.add_argument("--which", default="best", choices=["best", "last"])
    _add_settings(p, ("tta", "tta_zoom"), unset="default: as the run was trained")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images with a trained run")
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument(
        "images",
        nargs="+",
        help="image files (JPEG, PNG, BMP, GIF, WebP, TIFF, PPM/PGM); put -- before them if a "
        "name starts with -",
    )
    p.add_argument("--which", default="best", choices=["best", "last"])
    p.add_argument("--json", action="store_true", help="one JSON object per line and image")
    p.add_argument(
        "--heatmaps",
        metavar="DIR",
        help="also save each image with a Grad-CAM heatmap of where the model saw its label "
        "(new files DIR/NAME.heatmap.png; nothing is overwritten)",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "export",
        help="write a run's model for use without catdog (raw RGB pixels in, probabilities "
        "out), checked against the run's model; prints the path",
    )
    p.add_argument("run", help="run id (or a unique prefix)")
    p.add_argument("--format", default="keras", choices=["keras", "savedmodel", "tflite"])
    p.add_argument("--quantize", action="store_true", help="tflite: 8-bit weights (~4× smaller)")
    p.add_argument("--out", help="file or folder to write (default: RUN/exports/...)")
    p.add_argument("--which", default="best", choices=["best", "last"])
    p.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m catdog",
        description="Train a cat-vs-dog (or any folder-per-class) image classifier.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_dataset_commands(sub)
    add_builder_commands(sub)
    _add_training_commands(sub)
    _add_model_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ["CATDOG_DEBUG"] = "1"
    try:
        from catdog.data.importer import sweep_stale_imports

        sweep_stale_imports()  # what killed imports left behind (cheap: one folder listing)
        return int(args.func(args))
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return 130
    except TrainingFailed as exc:
        if os.environ.get("CATDOG_DEBUG"):
            raise
        print(f"error: training failed: {exc} (the run folder's error.log has the details; "
              "--debug shows them here)", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours. Stop writing quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (CLIError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # Library errors are ValueError subclasses whose message says what to do;
        # CATDOG_DEBUG=1 shows the traceback instead.
        if os.environ.get("CATDOG_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a folder we may not write: one line, not a traceback
        if os.environ.get("CATDOG_DEBUG"):
            raise
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _os_error(exc: OSError) -> str:
    """One line for an operating-system error no command turned into its own message."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full{where}: free some space and try again"
    return f"{exc.strerror or exc}{where}"
