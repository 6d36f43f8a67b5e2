#!/usr/bin/env python3
"""What the quality metrics cost: 300 real vs 300 generated images at 64 px (goal: under 30 s on 2 cores).

Times each stage of ``bin/gan_quality`` for one such pair of sets: the embeddings (the seeded random CNN and
an untrained MobileNetV3-Small classifier of the study's shape, which costs what a trained one does) on
600 in-memory images, then KID (100 subsets), FID, precision/recall/density/coverage (k=5), memorisation
(300 train, 100 test reference) and CAS on the features. The first embedding call of each model includes
its tracing and is timed apart. Prints the CPU model and the load average (other jobs inflate the figures).

    .venv/bin/python benchmarks/gan_quality.py
    .venv/bin/python benchmarks/gan_quality.py --num_images=1000 --image_size=128
"""

import os
import platform
import subprocess
import time

import numpy as np
from absl import app, flags

from keras_morsa.models.classifier import build_classifier
from keras_morsa.quality import features, metrics

_NUM = flags.DEFINE_integer("num_images", 300, "Images per set.")
_SIZE = flags.DEFINE_integer("image_size", 64, "Image side in pixels.")
_SUBSETS = flags.DEFINE_integer("kid_subsets", 100, "KID subsets.")
_K = flags.DEFINE_integer("k", 5, "Nearest neighbours of PRDC.")


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def timed(label, fn, times):
    start = time.perf_counter()
    result = fn()
    times[label] = time.perf_counter() - start
    print(f"  {label:<38} {times[label]:7.2f} s")
    return result


def main(argv):
    del argv
    import keras

    n, size = _NUM.value, _SIZE.value
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, load average {os.getloadavg()}; "
        f"keras {keras.__version__}, backend {keras.backend.backend()}"
    )
    print(f"{n} real vs {n} generated images at {size} px:")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2 * n, size, size, 3)).astype("float32")
    times = {}
    random_cnn = features.random_cnn(size)
    timed("random CNN: first call (tracing)", lambda: random_cnn.embed(images[:64]), times)
    feats = timed(f"random CNN: embed {2 * n} images", lambda: random_cnn.embed(images), times)
    classifier = features.classifier_embedding(build_classifier("mobilenet_v3_small", 10, size))
    timed("MobileNetV3-Small: first call (tracing)", lambda: classifier.embed(images[:64]), times)
    pool, probs = timed(f"MobileNetV3-Small: embed {2 * n} images", lambda: classifier.embed(images), times)
    for name, x in (("random CNN", feats), ("MobileNetV3-Small", pool)):
        real, fake = x[:n], x[n:]
        print(f" metrics on {name} features ({x.shape[1]}-d):")
        timed(
            f"KID ({_SUBSETS.value} subsets)",
            lambda r=real, f=fake: metrics.kid(r, f, num_subsets=_SUBSETS.value),
            times,
        )
        timed("FID", lambda r=real, f=fake: metrics.fid(r, f), times)
        timed(f"PRDC (k={_K.value})", lambda r=real, f=fake: metrics.prdc(r, f, k=_K.value), times)
        timed("memorisation", lambda r=real, f=fake: metrics.memorisation(r, r[: n // 3] + 1.0, f), times)
    timed("CAS", lambda: metrics.cas(probs[n:], rng.integers(0, 10, n), [str(i) for i in range(10)]), times)
    metric_total = sum(v for k, v in times.items() if "first call" not in k and "embed" not in k)
    print(
        f"total, metrics only (both feature kinds): {metric_total:.2f} s; embeddings after tracing: "
        f"{times[f'random CNN: embed {2 * n} images']:.2f} s (random CNN), "
        f"{times[f'MobileNetV3-Small: embed {2 * n} images']:.2f} s (MobileNetV3-Small); "
        f"everything incl. tracing: {sum(times.values()):.2f} s"
    )


if __name__ == "__main__":
    app.run(main)
