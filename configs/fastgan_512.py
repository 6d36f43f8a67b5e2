"""FastGAN at the paper's settings, 512 px: ngf = ndf = 64, nz = 256, batch 8, Adam 2e-4 (both), 50k steps.

DiffAugment "color,translation", EMA decay 0.999. One iteration costs seconds on a CPU: a GPU config.

    bin/train_gan --class=jaw --config=configs/fastgan_512.py
    bin/train_gan --class=jaw --config=configs/fastgan_512.py:smoke   # tiny, for tests

D's reconstruction loss is L1 (train.reconstruction="l1", no pretrained weights); the reference's
perceptual loss is an option that needs a local VGG16 weights file (nothing is downloaded):

    bin/train_gan --class=jaw --config=configs/fastgan_512.py --config.train.reconstruction=perceptual
        --config.train.perceptual_weights=/path/to/vgg16.weights.h5   # (one command line)
"""

from keras_morsa.errors import check_variant
from keras_morsa.training.train_gan import base_config, smoke_variant


def get_config(arg=None):
    arg = check_variant(arg, ("smoke",))
    config = base_config()
    config.model.image_size = 512
    return smoke_variant(config) if arg == "smoke" else config
