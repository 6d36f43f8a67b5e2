"""SavedModel export for TF Serving. TensorFlow by nature: exports always run on the TF backend."""
