"""Image folders, the built-in dataset, splits and tf.data pipelines."""
