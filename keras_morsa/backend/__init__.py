"""The only place for backend-specific code (TensorFlow, JAX, torch); everything else uses keras.ops."""
