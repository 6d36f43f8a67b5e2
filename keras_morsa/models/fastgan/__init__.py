"""FastGAN (Liu et al., ICLR 2021, arXiv 2101.04775) in Keras 3: generator, discriminator and their blocks.

Faithful to the paper and the authors' reference (odegeasslbc/FastGAN-pytorch): at ngf = ndf = 64,
nz = 256 and 256 px the trainable parameter counts are 29,127,846 (G) and 11,526,160 (D); spectral norm
is a PyTorch-style reparametrisation (``layers.SpectralConv2D``). Departures, all deliberate: tanh on both
generator outputs at every size (the reference bounds only its 1024-px outputs), reconstruction targets
made by block averaging instead of nearest-neighbour resizing (``downscale``), and the reduction below.

Image sizes 64, 128, 256, 512 and 1024. The reference stops at 256; 64 and 128 px are the same design cut
short. Channels per map side never change; blocks whose maps would exceed the image, and excitation (SLE)
pairs that lose a map, are dropped; the auxiliary small image, the small discriminator path and the three
reconstructions work at half the image side (``small_image_size``: 32 at 64 px, 64 at 128 px, else 128).

=====  ==========================================  ============================================
size   generator                                   discriminator
=====  ==========================================  ============================================
256    up-blocks 8..256, SLE 4->64, 8->128,        stem 3x3 to 256, compound downs 128..8,
       16->256; small image 128 from the 128 map   SLE 256->32, 128->16, 64->8; small path
                                                   128 -> 64 (stem), downs 32, 16, 8;
                                                   decoders 8 -> 128
128    up-blocks 8..128, SLE 4->64, 8->128;        stem 3x3 to 128, compound downs 64..8,
       small image 64 from the 64 map             SLE 128->16, 64->8; small path 64 -> 32
                                                   (stem), downs 16, 8; decoders 8 -> 64
64     up-blocks 8..64, SLE 4->64;                 stem 3x3 to 64, compound downs 32, 16, 8,
       small image 32 from the 32 map             SLE 64->8; small path 32 -> 16 (stem),
                                                   down 8; decoders 8 -> 32
=====  ==========================================  ============================================

512 and 1024 px follow the reference (G adds up-blocks to 512 with SLE 32->512, then 1024 without SLE;
D's stem reaches the 256 map with one or two stride-2 convs). At every size D returns 5x5 + 5x5 = 50 logits
per image, and the part decoder reconstructs a quarter of the 16x16 big-path map.

Class-conditional networks (``num_classes`` > 0; ``Generator``'s and ``Discriminator``'s docstrings): a label
embedding joined to the latent and conditional batch norm in G (``layers.ConditionalBatchNorm``), projection in
D. With 10 classes at the paper's settings above: 31,328,166 (G) and 11,538,960 (D) trainable parameters; at
``configs/fastgan_cpu.py`` (64 px, ngf = ndf = 16, nz 64, decoders 8): 1,921,380 and 680,256, against
1,765,956 and 677,056 unconditional. ``num_classes=0`` (the default) builds the unconditional networks above,
weight for weight.

The decoders' base width is the reference's fixed 32 channels whatever ``ndf`` (``Discriminator``'s
``decoder_width``); narrowing it is an option for CPU configs (``configs/fastgan_cpu.py`` uses ndf/2 = 8).
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
