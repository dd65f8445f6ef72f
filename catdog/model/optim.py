"""AdamW with one fused kernel per weight on the TensorFlow backend.

Keras 3's ``AdamW.update_step`` is written in backend-neutral ops: for every weight tensor
it runs about ten element-wise operations (two moving averages, a square root, a division,
three assignments...), each a separate pass over memory. On a 2-core CPU, for catdog-net's
5 M weights, that is about a tenth of a training step (``benchmarks/arch_speed.py``).
TensorFlow has the same Adam update as one C++ kernel (``ResourceApplyAdam``: the moments
and the weight updated in a single pass), and :class:`FusedAdamW` uses it — the same
algorithm as ``keras.optimizers.AdamW`` (decoupled weight decay first, then the Adam step
with Keras' bias correction and epsilon), to float rounding. Other backends, and AMSGrad,
fall back to Keras' own update.
"""

from __future__ import annotations

from typing import Any

from catdog.model.backend import keras, tf


@keras.saving.register_keras_serializable(package="catdog")
class FusedAdamW(keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` whose per-weight Adam step is one TensorFlow kernel."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Apply one Adam step to ``variable`` (weight decay is applied before, by Keras)."""
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            super().update_step(gradient, variable, learning_rate)
            return
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        # Keras hands the TensorFlow variable itself here; its slots are Keras variables.
        var, m, v = (x.value if isinstance(x, keras.Variable) else x for x in (variable, m, v))
        dtype = var.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=var.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
            use_nesterov=False,
        )
