"""The networks: the model registry, catdog-net's custom layers and optimizer, and the one
place TensorFlow and Keras are imported from (:mod:`catdog.model.backend`)."""
