"""Training on several devices or machines: the tf.distribute strategy, and how the batch and the
learning rate follow the number of replicas.

The ``strategy`` training setting is one of:

- ``one``: one device (the first GPU, else the CPU): TensorFlow's default, as catdog has always
  trained.
- ``mirrored``: ``tf.distribute.MirroredStrategy``: a replica of the model on every GPU of this
  machine (without GPUs, on every CPU device TensorFlow sees: normally one), each step's
  gradients averaged over the replicas.
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy``: the same over every machine of
  a cluster, each running the same ``python -m catdog train`` command with its place in the
  cluster given by ``TF_CONFIG`` (or ``--workers HOST:PORT,... --task-index K``).
- ``auto``: ``mirrored`` when more than one GPU is visible, else ``one``.

How a run follows the number of replicas R (the linear scaling rule with gradual warm-up of
Goyal et al., "Accurate, Large Minibatch SGD", 2017):

- **Batch**: the batch size setting is per replica, so a step takes ``batch_size × R`` images
  (the global batch). Each replica's batch norm statistics stay over ``batch_size`` images, as
  on one device, and a run's memory per device does not grow.
- **Epoch**: an epoch sees the same images as on one device: one pass over the training images,
  or ``steps_per_epoch × batch_size`` of them (the steps divided by R, rounded up).
- **Learning rate**: the learning rate (and the fine-tuning learning rate) is multiplied by R.
  A step averages the gradient over R times more images and an epoch has R times fewer steps;
  with R times the rate, an epoch moves the weights about as far as on one device.
- **Warm-up**: at least ``min(R - 1, 5)`` epochs of linear warm-up (a model's longer warm-up
  stands), so the first epoch starts near the one-device rate (the scaled rate / (warm-up + 1))
  instead of jumping to R times it while the weights are still random.

Importing this module is cheap (no TensorFlow): the command line and the pages use it before
Keras loads.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from catdog.train.config import TrainConfig

# What each strategy says about itself, for help texts and the Train page.
STRATEGY_HELP = {
    "auto": "several GPUs: mirrored; otherwise one device",
    "one": "one device: the first GPU, else the CPU",
    "mirrored": "a replica on every GPU of this machine (without GPUs: its CPU)",
    "multiworker": "a replica on every machine of a cluster (TF_CONFIG or --workers)",
}
# What a process that did not start as a cluster worker (the dashboard) can train with.
LOCAL_STRATEGIES = ("auto", "one", "mirrored")
# Set (to "1") in a process that trains as one worker of a cluster: catdog.model.backend then
# creates the process' MultiWorkerMirroredStrategy before TensorFlow's first operation, the
# only moment TensorFlow allows it.
CLUSTER_ENV = "CATDOG_MULTIWORKER"
MAX_SCALED_WARMUP = 5  # epochs: the most warm-up the replica count adds (Goyal et al. used 5)


# ---------------------------------------------------------------- the cluster (TF_CONFIG)


class ClusterError(ValueError):
    """A multi-worker cluster described wrongly; the message says what and how to fix it."""


_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def workers_tf_config(workers: str, task_index: int) -> str:
    """The ``TF_CONFIG`` of worker ``task_index`` of the cluster ``workers``.

    Args:
        workers: every worker's ``HOST:PORT``, comma-separated, in the same order on every
            machine; the first is the chief (it writes the run folder).
        task_index: this machine's place in ``workers``, from 0.

    Raises:
        ClusterError: an address that is not ``HOST:PORT``, or an index outside the list.
    """
    addresses = [a.strip() for a in workers.split(",") if a.strip()]
    bad = [a for a in addresses if not _ADDRESS.match(a) or int(a.rsplit(":", 1)[1]) == 0]
    if not addresses or bad:
        raise ClusterError(
            f"--workers must list every worker as HOST:PORT, comma-separated, got {workers!r}"
        )
    if not 0 <= task_index < len(addresses):
        raise ClusterError(
            f"--task-index must be this machine's place in --workers, 0 to "
            f"{len(addresses) - 1}, got {task_index}"
        )
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": task_index}}
    )


def cluster_from_env() -> dict[str, Any]:
    """The cluster ``TF_CONFIG`` describes: ``{"workers": N, "task": "worker", "index": K,
    "place": P}`` (``place``: this task's place among all of them, the chief's 0).

    Raises:
        ClusterError: ``TF_CONFIG`` is missing, not JSON, or names no worker or no task.
    """
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        raise ClusterError(
            "multiworker training needs its cluster: set TF_CONFIG, or pass --workers "
            "HOST:PORT,HOST:PORT,... and --task-index K (the same list on every machine)"
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = str(task["type"]), int(task["index"])
        count = sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ClusterError(
            "TF_CONFIG must be JSON with a 'cluster' of 'worker' (and optionally 'chief') "
            "addresses and this process' 'task' {'type': ..., 'index': ...}"
        ) from None
    if kind not in ("chief", "worker") or not 0 <= index < len(cluster.get(kind, [])):
        raise ClusterError(
            f"TF_CONFIG's task {kind} {index} is not one of its cluster's chief or workers"
        )
    chiefs = len(cluster.get("chief", []))
    place = index if kind == "chief" else chiefs + index  # the chief comes first
    return {"workers": count, "task": kind, "index": index, "place": place}


# ---------------------------------------------------------------- the rule


def replica_rule(cfg: TrainConfig, replicas: int) -> TrainConfig:
    """``cfg`` as the training loop uses it on ``replicas`` replicas (see the module's rule):
    the learning rates times ``replicas``, the warm-up at least ``min(replicas - 1, 5)``
    epochs and explicit steps per epoch divided by ``replicas``; ``batch_size`` stays per
    replica. One replica: ``cfg`` unchanged."""
    if replicas <= 1:
        return cfg
    warmup = max(int(cfg.warmup_epochs or 0), min(replicas - 1, MAX_SCALED_WARMUP))
    steps = int(cfg.steps_per_epoch or 0)
    return replace(
        cfg,
        learning_rate=None if cfg.learning_rate is None else cfg.learning_rate * replicas,
        fine_tune_lr=None if cfg.fine_tune_lr is None else cfg.fine_tune_lr * replicas,
        warmup_epochs=warmup,
        steps_per_epoch=math.ceil(steps / replicas) if steps else cfg.steps_per_epoch,
    )


# ---------------------------------------------------------------- the strategy


@dataclass
class Distribution:
    """The strategy a run trains with, where, and on how many replicas."""

    strategy: Any = field(repr=False)  # the tf.distribute.Strategy
    name: str  # one | mirrored | multiworker (what auto chose)
    requested: str  # the setting: auto | one | mirrored | multiworker
    devices: list[str]  # this machine's devices that hold a replica
    replicas: int  # replicas in sync, over all machines
    workers: int = 1  # machines (processes) in the cluster
    task: int = 0  # this worker's place in the cluster, from 0
    chief: bool = True  # whether this worker writes the run folder

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (without the strategy object)."""
        return {"strategy": self.name, "requested": self.requested, "devices": self.devices,
                "replicas": self.replicas, "workers": self.workers}  # fmt: skip

    def describe(self, batch_size: int) -> str:
        """One line: ``mirrored: 2 replicas (on /GPU:0, /GPU:1), global batch 64, learning
        rate ×2`` (``batch_size`` is per replica)."""
        return describe(self.to_dict(), batch_size)


def describe(record: dict[str, Any], batch_size: int | None = None) -> str:
    """A run's recorded distribution (:meth:`Distribution.to_dict`) in one line."""
    replicas = int(record.get("replicas") or 1)
    devices = ", ".join(record.get("devices") or []) or "?"
    workers = int(record.get("workers") or 1)
    where = f"{workers} workers, " if workers > 1 else ""
    line = f"{record.get('strategy', 'one')}: {replicas} replica{'s' * (replicas != 1)} "
    line += f"({where}{'each ' if workers > 1 else ''}on {devices})"
    if batch_size and replicas > 1:
        line += f", global batch {batch_size * replicas}, learning rate ×{replicas}"
    return line


@functools.cache
def _mirrored(devices: tuple[str, ...]) -> Any:
    """The process' one MirroredStrategy over ``devices``: every strategy numbers its collective
    operations from the same start, so a second one over the same devices (the next run in
    the dashboard) would collide with the first one's."""
    from catdog.model.backend import tf

    return tf.distribute.MirroredStrategy(devices=list(devices))


def _device_names(kind: str) -> list[str]:
    from catdog.model.backend import tf

    return [d.name.replace("/device:", "/") for d in tf.config.list_logical_devices(kind)]


def distribution(requested: str) -> Distribution:
    """Make the strategy ``requested`` names (``auto`` resolved on this machine); the value is
    a checked ``TrainConfig.strategy``.

    Raises:
        ClusterError: ``multiworker`` in a process that did not start as a cluster worker
            (``python -m catdog train --strategy multiworker`` does).
    """
    from catdog.model import backend

    tf = backend.tf
    gpus = _device_names("GPU")
    name = requested if requested != "auto" else "mirrored" if len(gpus) > 1 else "one"
    if name == "one":
        device = (gpus or ["/CPU:0"])[:1]  # where TensorFlow places a model by default
        return Distribution(tf.distribute.get_strategy(), name, requested, device, 1)
    if name == "mirrored":
        devices = gpus or _device_names("CPU")
        strategy = _mirrored(tuple(devices))
        return Distribution(strategy, name, requested, devices, strategy.num_replicas_in_sync)
    strategy = backend.cluster_strategy
    if strategy is None:
        raise ClusterError(
            "multiworker training starts from the command line on every machine: python -m "
            "catdog train --strategy multiworker --workers HOST:PORT,... --task-index K "
            "--run-id NAME"
        )
    # "/job:worker/replica:0/task:1/device:CPU:0" → "/CPU:0"
    devices = ["/" + d.rsplit("device:", 1)[-1] for d in strategy.extended.worker_devices]
    cluster = cluster_from_env()
    return Distribution(
        strategy, name, requested, devices, strategy.num_replicas_in_sync,
        workers=cluster["workers"], task=cluster["place"],
        chief=bool(strategy.extended.should_checkpoint),
    )  # fmt: skip
