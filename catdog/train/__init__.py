"""Training: its settings, augmentation, the input pipeline, arithmetic precision, the
training loop, background jobs, and the run folders it writes."""
