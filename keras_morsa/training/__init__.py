"""The GAN game and the training loops behind the ``bin/`` scripts."""
