"""Synthetic image quality measured offline: feature models, metrics, and the ``bin/gan_quality`` report."""
