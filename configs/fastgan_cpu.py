"""FastGAN sized for a 2-core CPU, the default of bin/train_gan: 64 px, ngf = ndf = 16, nz = 64, batch 8.

Budget: about 15 minutes per class on 2 CPU cores with the TensorFlow backend. One iteration (a D step and a
G step) measured 0.66 s of CPU time on a shared, heavily loaded 2-core machine (benchmarks/fastgan_step.py
--cases=cpu), i.e. roughly 0.35-0.45 s of wall time when both cores are free: 2,000 iterations take ~12-15
minutes plus ~1 minute of start-up (tracing, the first sample grid). EMA decay 0.995 (not the paper's
0.999) so that the sampled generator follows G within ~200 steps of this short run. The JAX and torch
backends are slower per step on CPU (see the benchmark). Grids and checkpoints every 250 steps, log every 50.

    bin/train_gan --class=jaw                                          # this config
    bin/train_gan --class=jaw --config.train.num_steps=4000            # longer, sharper
    bin/train_gan --class=jaw --config=configs/fastgan_cpu.py:smoke    # tiny, for tests

D's reconstruction loss is L1 (train.reconstruction="l1", no pretrained weights); the reference's
perceptual loss is an option that needs a local VGG16 weights file (nothing is downloaded):

    bin/train_gan --class=jaw --config=configs/fastgan_cpu.py --config.train.reconstruction=perceptual
        --config.train.perceptual_weights=/path/to/vgg16.weights.h5   # (one command line)
"""

from keras_morsa.training.train_gan import base_config, smoke_variant


def get_config(arg=None):
    config = base_config()
    config.data.image_size = 256  # the built-in dataset's cached 256-px build, shared with the other stages
    config.model.image_size = 64
    config.model.ngf = config.model.ndf = 16
    config.model.nz = 64
    config.train.num_steps = 2000
    # The paper's 0.999 averages over ~1000 steps: after 2000 steps its EMA still holds 0.999**2000 = 13 % of the
    # random initial weights (samples at step 500 were noise while D's reconstructions were already sharp).
    config.train.ema_decay = 0.995
    config.log_every = 50
    config.sample_every = config.checkpoint_every = 250
    return smoke_variant(config) if arg == "smoke" else config
