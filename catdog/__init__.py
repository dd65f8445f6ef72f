"""catdog: train an image classifier on a small dataset, on an ordinary computer.

The package is plain Python and never imports streamlit. It is laid out by what each part is
about, and TensorFlow is imported only where it is needed:

- :mod:`catdog.data` — photos on disk: paths, datasets, images, import, download, demo data.
  Never imports TensorFlow (a test keeps it so).
- :mod:`catdog.model` — the networks and the TensorFlow/Keras import (:mod:`~catdog.model.backend`).
- :mod:`catdog.train` — settings, augmentation, input pipeline, precision, the training loop,
  background jobs and run folders.
- :mod:`catdog.inference` — predict, evaluate, explain (Grad-CAM) and export a trained run.
- :mod:`catdog.cli`, :mod:`catdog.policy` (what hosted mode allows), :mod:`catdog.progress` and
  :mod:`catdog.failures` (one-line failure messages) serve all of them.
"""

__version__ = "0.1.0"
