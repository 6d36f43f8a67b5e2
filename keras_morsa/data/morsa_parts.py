"""The built-in ``morsa_parts`` dataset: procedural photographs of the parts of a mini bench vise.

The study's original photos are private, so the toolkit ships this stand-in to make every stage runnable
offline. Ten classes (:data:`CLASS_NAMES`), each image one part lying on a bench: shaded metal with specular
highlights (some instances painted, some rusty), a random pose (rotation, scale, position, camera tilt and
keystone), one of several bench surfaces (wood, cutting mat, paper, concrete or steel), sometimes clutter, a
key light of random direction and colour temperature with soft shadows, defocus blur, sensor noise and a
varying JPEG quality. Instances of a class vary in proportions (thread length, hole count, chamfers, heads),
and look-alike classes (jaw / jaw_plate; lead_screw / clamp_screw / pin; nut / washer) differ by details that
are hard to see at low resolution. Background, material, colour, light and the part's size in the frame are
drawn independently of the class, so none of them gives the label away. :class:`Difficulty` holds the knobs.

Layout (the ImageFolder layout users bring, plus masks)::

    <root>/images/<class>/<class>_<i>.jpg   RGB, image_size x image_size
    <root>/masks/<class>/<class>_<i>.png    mode L, 255 on the part's pixels, 0 elsewhere (for Grad-CAM scores)
    <root>/dataset.json                     written last; its presence marks a complete build

Image ``i`` of a class depends only on ``(seed, class, i)``: a build of 2 per class holds the first 2 images of
a build of 300, and building in parallel processes gives the same bytes as building in one. The same seed
gives byte-identical files on the same numpy and Pillow versions (``dataset.json`` records both).

Example:

    from keras_morsa.data import morsa_parts
    root = morsa_parts.load(images_per_class=300, image_size=256)   # built once, then reused
"""

import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import re
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont

import keras_morsa
from keras_morsa.data import _render
from keras_morsa.data.splits import MANIFEST_NAME
from keras_morsa.errors import DataError, UserError
from keras_morsa.io import read_json, write_json

CLASS_NAMES = ("base", "jaw", "jaw_plate", "lead_screw", "handle", "clamp", "clamp_screw", "nut", "washer", "pin")

# Bump when the drawing or the default Difficulty changes: load() then builds into a new cache folder, so no
# file derived from an older build (a split manifest beside it) is mistaken for one of the new images.
FORMAT_VERSION = 2

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class Difficulty:
    """The knobs that set how hard ``morsa_parts`` is. Every one is drawn independently of the class.

    Attributes:
        part_scale: (min, max) length of the part's longest side as a fraction of the frame (the same for
            every class, so size says nothing about the label).
        max_rotation_deg: in-plane rotation of the part around lying along the frame's width (either end
            first); 180 means any direction.
        max_tilt_deg: camera tilt from straight down; tilt foreshortens the bench and reveals side walls.
        max_perspective: keystone strength (relative change of scale across the frame).
        alike: 0..1, how far the proportions of look-alike classes (jaw/jaw_plate: aspect and thickness;
            lead_screw/clamp_screw/pin: diameter and thread length, knurled pins; nut/washer: thickness,
            bore, flanged nuts and toothed washers) are pulled toward one shared range. 0 keeps each class's
            typical proportions; 1 leaves only details (teeth, holes, heads, hexagon vs circle) to tell them.
        clutter_prob: chance that the bench holds clutter (pencils, erasers, coins, shavings, tape).
        clutter_max: most clutter items in one scene.
        paint_prob: chance that a part is painted (with chips), instead of bare metal.
        rust_prob: chance that a part shows rust.
        light_elevation_deg: (min, max) height of the key light above the bench; low light, long shadows.
        colour_temperature: (min, max) key light temperature in kelvin; white balance corrects only part of it.
        blur_max: largest defocus blur (Gaussian sigma in pixels of a 256 px image).
        shallow_focus_prob: chance that the bench is blurred more than the part (shallow depth of field).
        noise_max: largest sensor noise (standard deviation as a fraction of full scale, at mid-grey).
        jpeg_quality: (min, max) JPEG quality of the saved images.
    """

    # Defaults calibrated (format 2) so that MobileNetV3-Small from scratch at 64 px with the study's budget
    # lands inside 60-90 % real-only test accuracy (benchmarks/calibration.py). Format 1 (scale 0.45-0.9, any
    # rotation, tilt 35, alike 0.35, clutter 0.4, paint 0.3, rust 0.25, blur 1.5, noise 0.035, JPEG 55-95)
    # gave 22-40 %: the network memorised the 2100 training images instead of the parts.
    part_scale: tuple = (0.6, 0.95)
    max_rotation_deg: float = 15.0
    max_tilt_deg: float = 10.0
    max_perspective: float = 0.1
    alike: float = 0.0
    clutter_prob: float = 0.1
    clutter_max: int = 3
    paint_prob: float = 0.1
    rust_prob: float = 0.1
    light_elevation_deg: tuple = (40.0, 75.0)
    colour_temperature: tuple = (3500.0, 6500.0)
    blur_max: float = 0.8
    shallow_focus_prob: float = 0.1
    noise_max: float = 0.015
    jpeg_quality: tuple = (75, 95)

    def __post_init__(self):
        for name in ("alike", "clutter_prob", "paint_prob", "rust_prob", "shallow_focus_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"Difficulty.{name} must lie in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= self.max_rotation_deg <= 180.0:
            raise UserError(f"Difficulty.max_rotation_deg must lie in [0, 180], got {self.max_rotation_deg!r}")
        for name, low, high in (
            ("part_scale", 0.05, 1.0),
            ("light_elevation_deg", 5.0, 90.0),
            ("colour_temperature", 2000.0, 8000.0),
            ("jpeg_quality", 1, 100),
        ):
            pair = getattr(self, name)
            if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
                raise UserError(f"Difficulty.{name} must be (min, max) within [{low}, {high}], got {pair!r}")


def _check_int(name, value, low, high=None):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        accepted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise UserError(f"{name} must be {accepted}, got {value!r}")
    return int(value)


def _check_arguments(images_per_class, image_size, seed):
    return (
        _check_int("images_per_class", images_per_class, 1),
        _check_int("image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
        _check_int("seed", seed, 0),
    )


def render_image(class_name, index, image_size=256, seed=0, difficulty=Difficulty()):
    """Draws image ``index`` of ``class_name``, exactly as :func:`build` saves it (before JPEG encoding).

    Args:
        class_name: one of :data:`CLASS_NAMES`.
        index: the image's number within its class (``<class>_<index>.jpg``).
        image_size: output side in pixels.
        seed: dataset seed.
        difficulty: the :class:`Difficulty` knobs.

    Returns:
        ``(rgb, mask, jpeg_quality)``: ``uint8 [S, S, 3]``, ``uint8 [S, S]`` with 0 or 255, and the quality
        the JPEG is saved with.
    """
    if class_name not in CLASS_NAMES:
        raise UserError(f"unknown morsa_parts class {class_name!r}; expected one of {', '.join(CLASS_NAMES)}")
    index = _check_int("index", index, 0)
    _, image_size, seed = _check_arguments(1, image_size, seed)
    # One generator per image, keyed by (seed, class, index): images can be drawn in any order, in any process.
    rng = np.random.default_rng([seed, CLASS_NAMES.index(class_name), index])
    return _render.render(class_name, rng, image_size, difficulty)


def _encode(image, **save_args):
    buffer = io.BytesIO()
    image.save(buffer, **save_args)
    return buffer.getvalue()


def _build_one(task):
    """Draws, encodes and writes one image and its mask; returns its manifest row."""
    root, class_name, index, image_size, seed, difficulty = task
    rgb, mask, quality = render_image(class_name, index, image_size, seed, difficulty)
    row = {"class_name": class_name, "jpeg_quality": quality}
    for kind, data in (
        ("image", _encode(Image.fromarray(rgb), format="JPEG", quality=quality)),
        ("mask", _encode(Image.fromarray(mask, mode="L"), format="PNG")),
    ):
        relative = f"{kind}s/{class_name}/{class_name}_{index}.{'jpg' if kind == 'image' else 'png'}"
        (Path(root) / relative).write_bytes(data)
        row.update({kind: relative, f"{kind}_bytes": len(data), f"{kind}_sha256": hashlib.sha256(data).hexdigest()})
    return row


def _manifest_header(images_per_class, image_size, seed, difficulty):
    return {
        "name": "morsa_parts",
        "format_version": FORMAT_VERSION,
        "class_names": list(CLASS_NAMES),
        "images_per_class": images_per_class,
        "image_size": image_size,
        "seed": seed,
        "difficulty": dataclasses.asdict(difficulty),
        "versions": {"keras_morsa": keras_morsa.__version__, "numpy": np.__version__, "pillow": PIL.__version__},
    }


def _remove_stale(root, images_per_class):
    """Removes images and masks of an earlier, larger build in the same folder (only our own file names)."""
    for class_name in CLASS_NAMES:
        pattern = re.compile(rf"{re.escape(class_name)}_(\d+)\.(jpg|png)")
        for folder in (root / "images" / class_name, root / "masks" / class_name):
            for path in folder.iterdir():
                match = pattern.fullmatch(path.name)
                if match and int(match.group(1)) >= images_per_class:
                    path.unlink()


def build(out_dir, images_per_class=300, image_size=256, seed=0, progress=True, workers=None, difficulty=Difficulty()):
    """Draws the dataset into ``out_dir`` and writes ``dataset.json`` last.

    An earlier ``dataset.json`` in ``out_dir`` is removed first, so a build that is interrupted never looks
    complete, and so is an earlier ``split_manifest.csv``, whose hashes would no longer match.

    Args:
        out_dir: folder to fill (created if needed).
        images_per_class: images per class.
        image_size: side of the square images in pixels (16 to 1024).
        seed: dataset seed; the same seed gives the same bytes.
        progress: show a progress bar.
        workers: processes drawing in parallel; ``None`` means one per CPU core. The bytes do not depend on it.
        difficulty: the :class:`Difficulty` knobs.

    Returns:
        The dataset root, ``Path(out_dir)``.

    Example:

        root = build("/tmp/morsa_parts", images_per_class=3, image_size=64, progress=False)
    """
    images_per_class, image_size, seed = _check_arguments(images_per_class, image_size, seed)
    workers = (os.cpu_count() or 1) if workers is None else _check_int("workers", workers, 1)
    root = Path(out_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"out_dir {root} is a file; expected a folder to write the dataset into")
    (root / "dataset.json").unlink(missing_ok=True)
    # A split manifest hashes the files about to be redrawn: keep it and every later stage would refuse the
    # rebuilt images as "changed". The split is seeded, so it is recomputed identically for identical bytes.
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    for class_name in CLASS_NAMES:
        (root / "images" / class_name).mkdir(parents=True, exist_ok=True)
        (root / "masks" / class_name).mkdir(parents=True, exist_ok=True)
    _remove_stale(root, images_per_class)
    tasks = [
        (str(root), name, i, image_size, seed, difficulty) for name in CLASS_NAMES for i in range(images_per_class)
    ]
    workers = min(workers, len(tasks))
    rows = []
    # The pool starts before this function imports Keras for the progress bar, so the workers never inherit the
    # threads a backend starts. "fork" also spares each worker re-importing the package.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = context.Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_build_one, tasks, chunksize=4) if pool else map(_build_one, tasks)
        bar = None
        if progress:
            import keras  # imported late: it loads a backend, which only the bar needs

            bar = keras.utils.Progbar(len(tasks), unit_name="image")
        for row in results:
            rows.append(row)
            if bar is not None:
                bar.add(1)
    finally:
        if pool is not None:  # every result is in, or an error stops the build: end the workers now
            pool.terminate()
            pool.join()
    write_json(
        root / "dataset.json", {**_manifest_header(images_per_class, image_size, seed, difficulty), "files": rows}
    )
    return root


def is_complete(root, images_per_class=300, image_size=256, seed=0, difficulty=Difficulty()):
    """Whether ``root`` holds a finished build of exactly these settings (every listed file present, right size).

    File contents are not re-hashed; ``dataset.json`` holds each file's SHA-256 for a full check.
    """
    root = Path(root)
    try:
        manifest = read_json(root / "dataset.json")
    except (OSError, ValueError):
        return False
    # Through JSON and back, so tuples compare equal to the lists the manifest holds.
    expected = json.loads(json.dumps(_manifest_header(images_per_class, image_size, seed, difficulty)))
    if any(manifest.get(key) != value for key, value in expected.items() if key != "versions"):
        return False
    rows = manifest.get("files", [])
    if len(rows) != images_per_class * len(CLASS_NAMES):
        return False
    for row in rows:
        for kind in ("image", "mask"):
            path = root / row[kind]
            if not path.is_file() or path.stat().st_size != row[f"{kind}_bytes"]:
                return False
    return True


def home():
    """The cache folder: ``$KERAS_MORSA_HOME``, else ``~/.keras/datasets/morsa_parts``."""
    return Path(os.environ.get("KERAS_MORSA_HOME") or "~/.keras/datasets/morsa_parts").expanduser()


def cache_dir(images_per_class=300, image_size=256, seed=0):
    """Where :func:`load` keeps the build of these settings: one subfolder of :func:`home` per setting.

    The name also carries :data:`FORMAT_VERSION`, e.g. ``300_per_class_256px_seed0_v1``.
    """
    images_per_class, image_size, seed = _check_arguments(images_per_class, image_size, seed)
    return home() / f"{images_per_class}_per_class_{image_size}px_seed{seed}_v{FORMAT_VERSION}"


def load(images_per_class=300, image_size=256, seed=0, progress=True):
    """Returns the root of a complete build, drawing it first when the cache lacks one.

    A complete build in :func:`cache_dir` is reused untouched; a missing or incomplete one (no
    ``dataset.json``, a file missing or truncated, other settings or format version) is rebuilt.

    Example:

        root = load(images_per_class=300, image_size=256, seed=0)
        # root / "images" / "jaw" / "jaw_0.jpg", root / "masks" / "jaw" / "jaw_0.png", ...
    """
    root = cache_dir(images_per_class, image_size, seed)
    if is_complete(root, images_per_class, image_size, seed):
        return root
    return build(root, images_per_class, image_size, seed, progress=progress)


def dataset_root(data, data_dir=None):
    """The image root a stage works on: ``data_dir``, or the built-in dataset at the sizes of ``data``.

    Args:
        data: a config section with ``images_per_class``, ``render_size`` (the side rendered) and ``seed``
            (the built-in build; ``configs/common.py``'s ``builtin_data``).
        data_dir: a user image folder, or ``None`` for the built-in dataset (rendered, or reused from its
            cache, on first use).

    Raises:
        DataError: ``data_dir`` is not a folder.
    """
    if data_dir is None:
        return load(images_per_class=data.images_per_class, image_size=data.render_size, seed=data.seed)
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data_dir={data_dir}: no such folder; expected <dir>/<class>/<images>")
    return root


def contact_sheet(root, path, per_class=2, tile=128):
    """Writes a PNG with the first ``per_class`` images of every class in a column, labelled.

    Args:
        root: a dataset root (``images/<class>/<class>_<i>.jpg``).
        path: the PNG to write.
        per_class: images per class (rows).
        tile: side of each tile in pixels.

    Returns:
        ``Path(path)``.
    """
    root, path = Path(root), Path(path)
    per_class, tile = _check_int("per_class", per_class, 1), _check_int("tile", tile, 16)
    label_height = 18
    sheet = Image.new("RGB", (tile * len(CLASS_NAMES), label_height + tile * per_class), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for column, class_name in enumerate(CLASS_NAMES):
        draw.text((column * tile + tile / 2, label_height / 2), class_name, fill="black", font=font, anchor="mm")
        for row in range(per_class):
            image_path = root / "images" / class_name / f"{class_name}_{row}.jpg"
            if not image_path.is_file():
                raise UserError(f"contact sheet needs {image_path}; build at least {per_class} images per class")
            with Image.open(image_path) as image:
                sheet.paste(
                    image.convert("RGB").resize((tile, tile), Image.LANCZOS), (column * tile, label_height + row * tile)
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the sheet small enough to live in the repository.
    sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    return path
