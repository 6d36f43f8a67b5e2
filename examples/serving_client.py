#!/usr/bin/env python3
"""A TF Serving REST client for models exported with ``bin/export`` (standard library + numpy + Pillow).

Serve an export first (see the README's "Serving" section), e.g. the classifier as ``morsa`` and a GAN
generator as ``jaw_gan`` on port 8501, then:

    # classify image files, sent as base64 JPEG/PNG to the `predict_bytes` signature
    python examples/serving_client.py http://localhost:8501/v1/models/morsa:predict --images a.jpg b.png
    # the same, sent as uint8 pixel arrays to `serving_default` (the images must share one size)
    python examples/serving_client.py http://localhost:8501/v1/models/morsa:predict --pixels a.jpg b.jpg
    # ask a generator for 4 images of seed 7 and save them as PNG files
    python examples/serving_client.py http://localhost:8501/v1/models/jaw_gan:predict --generate 4 --seed 7

The payload builders (``bytes_payload``, ``pixels_payload``, ``generator_payload``, ``latents_payload``)
return plain JSON-ready dicts in TF Serving's request formats; ``predict`` posts one and returns the decoded
answer. TF Serving decodes every ``{"b64": ...}`` object into the raw bytes of a string input.
"""

import argparse
import base64
import json
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image


def bytes_payload(encoded_images):
    """Request for a classifier's ``predict_bytes``: encoded JPEG/PNG files, one instance each (row format).

    Args:
        encoded_images: iterable of ``bytes`` (the content of image files).
    """
    instances = [{"image_bytes": {"b64": base64.b64encode(data).decode("ascii")}} for data in encoded_images]
    return {"signature_name": "predict_bytes", "instances": instances}


def pixels_payload(images):
    """Request for a classifier's ``serving_default``: uint8 [height, width, 3] arrays of one common size.

    Row format: TF Serving stacks the instances into the [batch, height, width, 3] ``images`` input; the
    model resizes them itself.
    """
    arrays = [np.asarray(image, dtype=np.uint8) for image in images]
    if len({array.shape for array in arrays}) != 1 or arrays[0].ndim != 3 or arrays[0].shape[-1] != 3:
        raise ValueError(f"pixels_payload needs [height, width, 3] images of one size; got {[a.shape for a in arrays]}")
    return {"signature_name": "serving_default", "instances": [{"images": array.tolist()} for array in arrays]}


def generator_payload(num_images, seed):
    """Request for a generator's ``serving_default``: ``num_images`` images of ``seed`` (column format)."""
    return {"signature_name": "serving_default", "inputs": {"num_images": int(num_images), "seed": int(seed)}}


def latents_payload(latents, seed=0):
    """Request for a generator's ``from_latents``: float [n, nz] latents and the noise ``seed``."""
    latents = np.asarray(latents, dtype=np.float32)
    return {"signature_name": "from_latents", "inputs": {"latents": latents.tolist(), "seed": int(seed)}}


def predict(url, payload, timeout=60):
    """POSTs ``payload`` as JSON to a TF Serving ``.../v1/models/<name>:predict`` URL; returns the parsed answer."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def _read_pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="e.g. http://localhost:8501/v1/models/morsa:predict")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--images", nargs="+", type=Path, help="JPEG/PNG files, sent as base64 bytes")
    group.add_argument("--pixels", nargs="+", type=Path, help="image files of one size, sent as uint8 arrays")
    group.add_argument("--generate", type=int, metavar="N", help="ask a generator for N images")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--out_dir", type=Path, default=Path("generated"), help="where generated PNGs go")
    args = parser.parse_args()

    if args.images:
        payload = bytes_payload(path.read_bytes() for path in args.images)
    elif args.pixels:
        payload = pixels_payload(_read_pixels(path) for path in args.pixels)
    else:
        payload = generator_payload(args.generate, args.seed)
    answer = predict(args.url, payload)

    if args.generate is None:
        names = args.images or args.pixels
        for name, row in zip(names, answer["predictions"]):
            top = max(row["probabilities"])
            print(f"{name}: {row['class_name']} (class {row['class_id']}, p={top:.3f})")
        return
    # Column-format requests get a column-format answer: {"outputs": [[...image...], ...]}.
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(answer["outputs"]):
        path = args.out_dir / f"seed{args.seed}_{i}.png"
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
        print(path)


if __name__ == "__main__":
    main()
