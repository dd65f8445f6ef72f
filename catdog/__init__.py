"""catdog: train an image classifier on a small dataset, on an ordinary computer.

The package is plain Python: it never imports streamlit, and TensorFlow is imported only by
the modules that need it (augment, pipeline, models, training, evaluate, predict), so that
importing `catdog` itself, listing datasets or runs, and drawing the demo data stay fast.
"""

__version__ = "0.1.0"
