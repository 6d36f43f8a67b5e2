#!/usr/bin/env python3
"""Train a (tiny) FastGAN on one class, then draw synthetic images and a latent-space GIF from it.

This walks the library calls behind ``bin/train_gan`` and ``bin/generate`` on a toy budget (a few minutes
on a laptop CPU: 64 px, narrow networks, 20 steps), so the pictures are blobs. For recognisable parts run
the CPU config, about 15 minutes per class on 2 cores:

    bin/train_gan --class=jaw && bin/generate --gan_workdir=workdirs/gan --num_images=100 --out_dir=workdirs/synthetic

Run from the repository root:

    python examples/03_synthesis.py
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `configs` when run from anywhere

from configs.fastgan_cpu import get_config  # noqa: E402
from keras_morsa.data import morsa_parts  # noqa: E402
from keras_morsa.io import read_csv  # noqa: E402
from keras_morsa.training.generate import generate  # noqa: E402
from keras_morsa.training.train_gan import train_gan  # noqa: E402

workdir = Path(tempfile.mkdtemp(prefix="keras_morsa_synthesis_"))

# 1. A small copy of the built-in dataset (the GAN learns from the "jaw" class's train split only).
data_dir = morsa_parts.build(workdir / "data", images_per_class=12, image_size=64, seed=0, progress=False)

# 2. Train. The smoke variant of the CPU config, stretched to 20 steps; every key can be changed like this,
#    or with --config.x=y on bin/train_gan. Rerunning the same call on the same workdir resumes.
config = get_config("smoke")
config.train.num_steps = 20
config.sample_every = config.checkpoint_every = 10
runs = train_gan(config, workdir / "gan", "jaw", data_dir=data_dir)
run = runs["jaw"]
print("sample grids:", sorted(p.name for p in (run / "samples").iterdir()))
print("last log row:", read_csv(run / "log.csv")[-1])

# 3. Generate 8 images from the EMA generator, plus a looping interpolation GIF. The folder is what the
#    ratio study reads: <out>/<class>/*.png, manifest.csv (one row per image) and sources.txt (the hashes of
#    the real training images, so the leak check can refuse a split whose test images trained the GAN).
out = workdir / "synthetic"
generate(workdir / "gan", out, num_images=8, interpolate=True, progress=False)
print("synthetic images:", sorted(p.name for p in (out / "jaw").iterdir())[:3], "...")
print("interpolation:", out / "interpolation_jaw.gif")
print("everything is under", workdir)
