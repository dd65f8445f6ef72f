"""Photos on disk, without TensorFlow: where catdog keeps things, datasets and their splits,
decoding images, importing folders and archives, downloading, and the built-in demo data."""
