"""FastGAN networks and classifiers."""
