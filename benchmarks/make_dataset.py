"""Times building the built-in morsa_parts dataset (default: 3000 images at 256 px, one process per core).

  .venv/bin/python benchmarks/make_dataset.py [--images_per_class=300] [--image_size=256] [--workers=N]

Prints the wall time and images per second of ``morsa_parts.build`` into a temporary folder (deleted after).
The progress bar is off, so the time is drawing and writing only, without importing Keras. The goal is under
2 minutes for 3000 images at 256 px on 2 cores. On a shared machine the load average (printed) inflates the
wall time; the CPU seconds it also prints do not depend on the load.
"""

import os
import tempfile
import time

from absl import app, flags

from keras_morsa.data import morsa_parts

_IMAGES_PER_CLASS = flags.DEFINE_integer("images_per_class", 300, "Images per class.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 256, "Image side in pixels.")
_WORKERS = flags.DEFINE_integer("workers", None, "Processes; default: one per CPU core.")


def main(argv):
    del argv
    workers = _WORKERS.value or os.cpu_count()
    images = _IMAGES_PER_CLASS.value * len(morsa_parts.CLASS_NAMES)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), os.times()
        morsa_parts.build(tmp, _IMAGES_PER_CLASS.value, _IMAGE_SIZE.value, seed=0, progress=False, workers=workers)
        seconds, cpu_end = time.perf_counter() - start, os.times()
    # CPU time of this process and its joined workers: what the build costs whatever else shares the machine.
    cpu = sum(
        getattr(cpu_end, f) - getattr(cpu_start, f) for f in ("user", "system", "children_user", "children_system")
    )
    print(
        f"morsa_parts build: {images} images at {_IMAGE_SIZE.value} px, {workers} processes "
        f"({os.cpu_count()} cores, load average {load:.1f} at start)"
    )
    print(f"seconds: {seconds:.1f}")
    print(f"images/s: {images / seconds:.1f}")
    print(
        f"CPU seconds (all processes): {cpu:.1f}, that is {1000 * cpu / images:.1f} ms per image; "
        f"on {workers} otherwise idle cores about {cpu / workers:.0f} s"
    )


if __name__ == "__main__":
    app.run(main)
