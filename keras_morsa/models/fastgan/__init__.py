"""FastGAN (Liu et al., ICLR 2021, arXiv 2101.04775) in Keras 3: generator, discriminator and their blocks.

Faithful to the paper and the authors' reference (odegeasslbc/FastGAN-pytorch): at ngf = ndf = 64,
nz = 256 and 256 px the trainable parameter counts are 29,127,846 (G) and 11,526,160 (D). Supported image
sizes are 64, 128, 256, 512 and 1024; 64 and 128 px, which the reference lacks, are the same design cut
short, as described in :class:`Generator` and :class:`Discriminator`.
"""

from keras_morsa.models.fastgan.discriminator import Discriminator, downscale, reconstruction_targets
from keras_morsa.models.fastgan.generator import IMAGE_SIZES, Generator, small_image_size

__all__ = [
    "IMAGE_SIZES",
    "Discriminator",
    "Generator",
    "downscale",
    "reconstruction_targets",
    "small_image_size",
]
