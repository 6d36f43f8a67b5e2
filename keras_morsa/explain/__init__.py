"""Grad-CAM (keras.ops on every backend; tf-keras-vis on TensorFlow) and its metrics."""
