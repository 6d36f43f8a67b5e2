"""keras-morsa: grow a small labeled image dataset with FastGAN images, then measure whether it helped.

The package never sets ``KERAS_BACKEND``: choose TensorFlow, JAX or torch before importing it. Stages:

- ``keras_morsa.data``: image folders, the built-in ``morsa_parts`` dataset, leak-proof splits, tf.data
  pipelines with real/synthetic ratio mixing.
- ``keras_morsa.models``: FastGAN generator/discriminator, classifiers on KerasCV (or KerasHub) backbones.
- ``keras_morsa.training``: the GAN game (custom ``train_step`` per backend) and the loops behind ``bin/``.
- ``keras_morsa.evaluation``: the ratio study, statistics and plots.
- ``keras_morsa.explain``: Grad-CAM and its metrics.
- ``keras_morsa.export``: SavedModel export for TF Serving (TensorFlow by nature).
"""

__version__ = "0.1.0"
