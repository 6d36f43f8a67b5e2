"""The study's FastGAN variant at 256 px: LeakyReLU instead of GLU in G, SAGAN self-attention, and the two
time-scale learning rates (1e-4 for G, 4e-4 for D); otherwise the paper's settings (fastgan_size.py).

Self-attention sits after the 32x32 maps of G and D (its memory grows with the square of the map's area).

    bin/train_gan --class=jaw --config=configs/fastgan_morsa.py
    bin/train_gan --class=jaw --config=configs/fastgan_morsa.py:smoke   # tiny, for tests

D's reconstruction loss is L1, as in every FastGAN config (the perceptual option: configs/fastgan_size.py).
"""

from keras_morsa import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
    arg, config = common.fastgan_start(arg)
    config.model.image_size = 256
    config.model.activation = "leaky_relu"
    config.model.attention_resolutions = (32,)
    config.train.g_lr = 1e-4
    config.train.d_lr = 4e-4
    if arg == "smoke":
        common.fastgan_smoke(config)
        config.model.attention_resolutions = (16,)
    return config
