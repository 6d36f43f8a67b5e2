"""FastGAN sized for a 2-core CPU, the default of bin/train_gan: 64 px, ngf = ndf = 16, D's decoders 8 wide,
nz = 64, batch 8, 3500 steps.

Sized for about 15 minutes per class on 2 CPU cores with the TensorFlow backend (the measured step and run
times, per backend: README, "Train a FastGAN" and "Benchmarks"; benchmarks/fastgan_step.py --cases=cpu).
The narrow decoders buy the extra steps over the first CPU config; the game is unchanged. EMA decay 0.995
(not the paper's 0.999) so that the sampled generator follows G within ~200 steps of this short run. Grids
and checkpoints every 500 steps, log every 50.

    bin/train_gan --class=jaw                                          # this config
    bin/train_gan --class=jaw --config.train.num_steps=8000            # longer, sharper
    bin/train_gan --class=jaw --config=configs/fastgan_cpu.py:smoke    # tiny, for tests

D's reconstruction loss is L1. The reference's perceptual loss costs about a VGG16 pass per reconstruction:
a GPU option (configs/fastgan_size.py says how to turn it on, for any FastGAN config).
"""

from keras_morsa import cli

common = cli.config_module(__file__, "common")


def get_config(arg=None):
    arg, config = common.fastgan_start(arg)
    # Trained at 64 px on the built-in dataset's cached 256-px render, shared with the other stages; the
    # networks' widths and the latent a quarter of the paper's.
    config.model.update(image_size=64, ngf=16, ndf=16, nz=64)
    # D's three reconstruction decoders have a fixed base width of 32 in the reference (ndf/2 at ndf 64). Kept
    # at 32 here they were half of every iteration (README, "Benchmarks"); ndf/2 = 8 keeps the reference's
    # proportion and buys ~1.7x the steps in the same time.
    config.model.decoder_width = 8
    config.train.num_steps = 3500
    # The paper's 0.999 averages over ~1000 steps: after 2000 steps its EMA still holds 0.999**2000 = 13 % of the
    # random initial weights (samples at step 500 were noise while D's reconstructions were already sharp).
    config.train.ema_decay = 0.995
    config.log_every = 50
    config.sample_every = config.checkpoint_every = 500
    return common.fastgan_smoke(config) if arg == "smoke" else config
