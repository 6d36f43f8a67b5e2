"""The classifier's output layer: a softmax that carries the class names in its config."""

import keras


@keras.saving.register_keras_serializable(package="keras_morsa")
class Probabilities(keras.layers.Layer):
    """Softmax over the last axis whose config records the label of each class index.

    A saved classifier thus knows its labels: Grad-CAM and export read them back with
    ``keras_morsa.models.classifier.class_names_of`` and need no side file.

    Args:
        class_names: list of label names, one per logit, in class-index order.
        **kwargs: standard layer arguments (``name``, ``dtype``).

    Example:
        >>> layer = Probabilities(["jaw", "nut"], name="probabilities")
        >>> keras.ops.convert_to_numpy(layer(keras.ops.zeros((1, 2)))).tolist()
        [[0.5, 0.5]]
    """

    def __init__(self, class_names, **kwargs):
        super().__init__(**kwargs)
        self.class_names = [str(name) for name in class_names]

    def call(self, logits):
        return keras.ops.softmax(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["class_names"] = list(self.class_names)
        return config
