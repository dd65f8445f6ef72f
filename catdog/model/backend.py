"""The one place catdog imports TensorFlow and Keras: quietly, and only when first needed.

TensorFlow 2.21 prints a screenful of start-up messages (oneDNN notes, a missing-CUDA probe)
straight to the process' standard error, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect. Those
would bury the CLI's output and the dashboard's logs, so the import and TensorFlow's first
operation run with file descriptor 2 pointed at /dev/null. Errors still surface: an import
that fails raises its exception after the descriptor is restored.

Library modules write ``from catdog.model.backend import keras, tf`` instead of importing them
directly; importing this module is what loads TensorFlow.

A process started as one worker of a multi-worker cluster (``CATDOG_MULTIWORKER=1`` with
``TF_CONFIG``, as ``python -m catdog train --strategy multiworker`` sets them) creates its
``tf.distribute.MultiWorkerMirroredStrategy`` here, before TensorFlow's first operation, the only
moment TensorFlow allows it: it is :data:`cluster_strategy` (None in any other process). Creating
it waits until every worker of the cluster has started.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

_lock = threading.Lock()
cluster_strategy = None  # this process' MultiWorkerMirroredStrategy, if it is a cluster worker


def _join_cluster(tensorflow: Any) -> None:
    global cluster_strategy
    if os.environ.get("CATDOG_MULTIWORKER") != "1" or cluster_strategy is not None:
        return

    class ClusterStrategy(tensorflow.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose ``reduce`` takes what Keras' fit gives it: a
        nested (images, labels) batch before training, and scalar metrics with ``axis=0``
        (MirroredStrategy accepts both; on a cluster, TensorFlow 2.21 refuses them, and Keras
        3's fit fails: keras-team/keras#20585). A scalar is reduced across the replicas."""

        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            each = super().reduce

            def one(v: Any) -> Any:
                local = self.experimental_local_results(v)[0]
                return each(reduce_op, v, None if local.shape.rank == 0 else axis)

            return tensorflow.nest.map_structure(one, value)

    cluster_strategy = ClusterStrategy()


def _quiet_import() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    with _lock:
        try:
            saved = os.dup(2)
        except OSError:  # no usable stderr (some embedded hosts): import normally
            saved = None
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            if saved is not None:
                os.dup2(devnull, 2)
            import tensorflow

            _join_cluster(tensorflow)
            tensorflow.constant(0.0).numpy()  # the first op triggers the device probe logs
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            os.close(devnull)


_quiet_import()

import keras  # noqa: E402  (after the quiet import above)
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
