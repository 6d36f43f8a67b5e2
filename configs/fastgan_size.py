"""FastGAN at the paper's settings at a chosen size: ngf = ndf = 64, nz = 256, batch 8, Adam 2e-4 (both), 50k steps.

DiffAugment "color,translation", EMA decay 0.999. One iteration costs seconds on a CPU: a GPU config. The
argument is the image side, 256 (the default), 512 or 1024; "smoke" is the tiny 64-px variant tests use
(the same whatever the size).

    bin/train_gan --class=jaw --config=configs/fastgan_size.py          # 256 px
    bin/train_gan --class=jaw --config=configs/fastgan_size.py:1024
    bin/train_gan --class=jaw --config=configs/fastgan_size.py:smoke    # tiny, for tests

D's reconstruction loss is L1 (train.reconstruction="l1", no pretrained weights); the reference's
perceptual loss is an option of every FastGAN config that needs a local VGG16 weights file (nothing is
downloaded):

    bin/train_gan --class=jaw --config=configs/fastgan_size.py:512 --config.train.reconstruction=perceptual
        --config.train.perceptual_weights=/path/to/vgg16.weights.h5   # (one command line)
"""

from keras_morsa import cli

common = cli.config_module(__file__, "common")

SIZES = ("256", "512", "1024")


def get_config(arg=None):
    arg, config = common.fastgan_start(arg, SIZES)
    if arg == "smoke":
        return common.fastgan_smoke(config)
    config.model.image_size = int(arg or 256)
    return config
