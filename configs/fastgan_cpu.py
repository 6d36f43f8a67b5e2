"""FastGAN sized for a 2-core CPU (the default of bin/train_gan): 64 px, ngf = ndf = 16, nz = 64, batch 8.

Steps and expected wall time: see get_config (measured on a 2-core CPU with the TensorFlow backend).

    bin/train_gan --class=jaw                                   # this config
    bin/train_gan --class=jaw --config=configs/fastgan_cpu.py:smoke   # tiny, for tests
"""

from keras_morsa.training.train_gan import base_config, smoke_variant


def get_config(arg=None):
    config = base_config()
    config.data.image_size = 256
    config.model.image_size = 64
    config.model.ngf = config.model.ndf = 16
    config.model.nz = 64
    config.train.num_steps = 3000
    config.log_every = 50
    config.sample_every = config.checkpoint_every = 250
    return smoke_variant(config) if arg == "smoke" else config
