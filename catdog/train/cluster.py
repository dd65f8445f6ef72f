"""Training on a cluster of machines: what its workers agree on, and how a lost worker is recovered.

Every machine runs the same ``python -m catdog train --strategy multiworker`` command (see
:mod:`catdog.train.distribute`). The chief (the first worker) trains in the run's folder; the
others train the same steps in a temporary folder they delete at the end. They stay in step:

- **Decisions**: the chief's time limit and early stopping decide for all, and a stop request
  on any worker stops every worker after the same batch (:func:`agree`, one small all-reduce).
- **Backups**: at each epoch's end every worker backs up its state with Keras'
  ``BackupAndRestore`` (the chief into the run folder's ``backup/``). When a worker is killed,
  the others fail too (their collective operations lose it); run the same command again on
  every machine (a cluster manager does) and the chief restores its backup, broadcasts it to
  every worker (:class:`ClusterBackup`), and training continues after the backed-up epoch.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from catdog.model.backend import keras, tf
from catdog.train import runs
from catdog.train.distribute import Distribution

BACKUP_DIR = "backup"  # in a run folder: the chief's BackupAndRestore files
_METADATA = "training_metadata.json"  # what BackupAndRestore writes beside the weights


def _chief_sum(dist: Distribution, values: Callable[[], list[Any]]) -> list[Any]:
    """Every worker's copy of ``values()`` as the chief's first replica has them: an all-reduce
    to which that replica contributes its values and every other replica zeros."""

    def contribute() -> list[Any]:
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        mine = [tf.where(first, v, tf.zeros_like(v)) for v in values()]
        return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

    summed = tf.function(lambda: dist.strategy.run(contribute))()  # once a fit: traced anew
    return [dist.strategy.experimental_local_results(v)[0] for v in summed]


def agree(
    dist: Distribution, chief_values: Sequence[float], flags: Sequence[bool]
) -> tuple[list[float], list[bool]]:
    """What every worker of the cluster does next: the chief's ``chief_values`` and, for each
    of ``flags``, whether any worker raised it. Every worker must call it at the same point."""
    n = len(chief_values)
    local = [float(v) for v in chief_values] + [float(bool(f)) for f in flags]
    if dist.workers <= 1 or not local:
        return local[:n], [v > 0 for v in local[n:]]
    summed = _agreement(dist.strategy, n)(tf.constant(local, tf.float64))
    values = [float(v) for v in dist.strategy.experimental_local_results(summed)[0].numpy()]
    return values[:n], [v > 0 for v in values[n:]]


@functools.cache
def _agreement(strategy: Any, n: int) -> Callable[[Any], Any]:
    """A compiled all-reduce of a float64 vector whose first ``n`` entries only the chief's
    first replica contributes (once per batch: compiled, not eager)."""

    def contribute(vector: Any) -> Any:
        context = tf.distribute.get_replica_context()
        first = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float64)
        mask = tf.concat([tf.fill([n], first), tf.ones_like(vector[n:])], 0)
        return context.all_reduce(tf.distribute.ReduceOp.SUM, vector * mask)

    return tf.function(lambda vector: strategy.run(contribute, args=(vector,)))


def broadcast_from_chief(dist: Distribution, variables: Sequence[Any]) -> None:
    """Give every replica the chief's values of ``variables`` (Keras variables)."""
    if dist.workers <= 1 or not variables:
        return

    def read() -> list[Any]:
        # All as float64 (one all-reduce packs them together): exact for float32 weights and
        # for the optimizer's step count.
        return [tf.cast(v.value, tf.float64) for v in variables]

    for variable, value in zip(variables, _chief_sum(dist, read), strict=True):
        variable.assign(tf.cast(value, variable.dtype))


class ClusterBackup(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore`` for a cluster: every worker backs up its state at the end of
    every epoch; when a fit starts after a restart, the chief restores its backup and every
    worker takes the chief's weights and optimizer state, so a worker restarted from nothing
    trains on in step with the others.

    The backup stays after a fit (a pretrained model fits twice); :func:`discard_backup`
    removes it when the run completes.
    """

    def __init__(self, backup_dir: Path, dist: Distribution, restore: bool) -> None:
        """``restore``: the chief restores its backup as this fit starts (the first fit after
        the cluster continued a run: :func:`continue_from_backup`)."""
        # Two generations: a kill while one is written leaves the previous one readable.
        super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
        self.dist, self.restore = dist, restore

    def on_train_begin(self, logs: Any = None) -> None:
        """Restore the chief's backup (if ``restore``) and give every worker the chief's state.

        Keras creates variables while it saves or loads a model (a throwaway optimizer: 3.15
        never reuses the one it makes), and inside a cluster's strategy scope creating one is
        a collective operation that every worker must run at the same point. So every worker
        runs the same Keras operations: it saves its state and loads a file back, the chief its
        backup, the others what they saved; the broadcast then gives all the chief's state.
        """
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        if self.restore:
            with tempfile.TemporaryDirectory(prefix="catdog-") as scratch:
                own = Path(scratch) / "own.weights.h5"
                self.model.save_weights(own)
                if self.dist.chief:
                    super().on_train_begin(logs)  # BackupAndRestore restores the backup
                else:
                    self.model.load_weights(own)
        broadcast_from_chief(self.dist, [*self.model.weights, *optimizer.variables])

    def on_train_end(self, logs: Any = None) -> None:
        super().on_train_end(logs)
        # BackupAndRestore tells fit where to start through the model; the next fit (the
        # fine-tuning phase) starts where the trainer says.
        self.model._initial_epoch = None


def backup_epoch(run_path: Path) -> int:
    """The epochs the run folder's backup holds (0: none yet)."""
    try:
        metadata = json.loads((run_path / BACKUP_DIR / _METADATA).read_text(encoding="utf-8"))
        return max(0, int(metadata["epoch"]))
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def continue_from_backup(dist: Distribution, run_path: Path, history: list[dict]) -> int:
    """Agree with the other workers on the epoch training continues after: the chief's
    backup's (0 for a new run). The chief's ``history`` (and its run folder) forget any epoch
    after it, which training redoes; another worker's ``history`` is made as long.

    Returns:
        The epochs restored from the backup (0: none).
    """
    mine = backup_epoch(run_path) if dist.chief and history else 0
    epoch = int(agree(dist, [mine], [])[0][0])
    if dist.chief:
        history[:] = runs.truncate_epochs(run_path, epoch)
        if not epoch:  # what a kill during the first backup left
            discard_backup(run_path)
    else:  # its own folder is temporary: only the count matters
        history[:] = [{"epoch": n + 1} for n in range(epoch)]
    return epoch


def discard_backup(run_path: Path) -> None:
    """Remove a completed run's backup."""
    shutil.rmtree(run_path / BACKUP_DIR, ignore_errors=True)


def shared_by_workers(dataset: Any) -> Any:
    """``dataset`` with its batches shared out among the workers (each worker reads every
    image, in the same seeded order, and trains on its share of each global batch)."""
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
