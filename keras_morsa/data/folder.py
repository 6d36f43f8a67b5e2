"""Reading a user's image folder: one sub-folder per class, every file checked once.

Layout: ``<root>/<class_name>/<files>`` (files may sit in nested sub-folders of a class folder), or a root
holding ``images/<class_name>/`` (the built-in ``morsa_parts`` layout, with ``masks/`` beside it). Accepted
formats are :data:`IMAGE_EXTENSIONS` (case-insensitive); a GIF contributes its first frame. Names starting
with a dot (``.DS_Store``, ``.ipynb_checkpoints``) are ignored; non-ASCII names work. Class names are the
folder names sorted by Python string order, and label ``i`` means ``class_names[i]``.

Every image goes through :func:`load_image`, which returns ``uint8 [H, W, 3]`` RGB: EXIF orientation is
applied; grayscale, palette, 16-bit and CMYK images are converted to RGB; images with transparency (RGBA,
LA, palette or RGB with a transparent colour) are composited on a white background (a white
background matches how such images look in a viewer and on a page, and a black one would turn dark parts
into silhouettes). Embedded ICC colour profiles are not applied.

Verification is a full decode through :func:`load_image`, not ``PIL.Image.verify()``: ``verify`` checks
little more than the header and chunk checksums (a truncated JPEG passes it and fails later), and it leaves
the file unusable for decoding. Decoding a 256 px JPEG costs about a millisecond, and the scan decodes with a
thread pool (Pillow releases the GIL while decoding), so checking a whole dataset takes seconds. Because the
tf.data pipelines decode with the same function, a file that passed the scan cannot fail in training.

Files that cannot be decoded (corrupt, truncated, empty, not an image, over Pillow's decompression-bomb
limit ``2 * Image.MAX_IMAGE_PIXELS``) and files with another extension are skipped: they are listed with
their reason in one ``DataWarning`` per scan and in :meth:`FolderScan.report`. Structural problems (missing
path, no class folders, too few images in a class) raise :class:`~keras_morsa.errors.DataError`.
"""

import concurrent.futures
import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from keras_morsa.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")

# How many skipped files the warning names before it refers to the report for the rest.
_WARN_LISTED = 20


class BadImage(DataError):
    """A file that cannot be decoded into an RGB image; ``reason`` says why in a few words."""

    def __init__(self, path, reason):
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class DataWarning(UserWarning):
    """Data was skipped or looks suspicious; the run goes on without it."""


def _to_rgb(image):
    """Converts any Pillow mode to 8-bit RGB (transparency composited on white)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale (PNG opens as I;16, some decoders give I): map 0..65535 onto 0..255 with rounding.
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)  # a writable copy (asarray would be read-only)


def load_image(path):
    """Decodes one image file to ``uint8 [H, W, 3]`` RGB, the one decode used everywhere.

    Args:
      path: the file (``str`` or ``Path``).

    Returns:
      A C-contiguous ``np.uint8`` array ``[H, W, 3]``, EXIF orientation applied, transparency composited on
      white.

    Raises:
      BadImage: the file is empty, not an image, truncated or corrupt, or over the decompression-bomb limit.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImage(path, "empty file (0 bytes)")
        with Image.open(path) as image:
            image.load()
            # In place: the copying variant doubles the cost of decoding a small JPEG.
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage(path, "not a recognised image format") from None
    except Image.DecompressionBombError as error:
        raise BadImage(path, f"over the decompression-bomb limit ({error})") from None
    except Exception as error:  # noqa: BLE001
        # Pillow's decoders signal broken data with many unrelated types (OSError for truncation,
        # SyntaxError, ValueError, struct.error, IndexError, ...): every one of them means "skip this file".
        raise BadImage(path, f"{type(error).__name__}: {error}") from None


@dataclasses.dataclass
class FolderScan:
    """The result of :func:`scan_image_folder`.

    Attributes:
      root: the folder holding the class folders (``<dataset>/images`` for the built-in layout).
      class_names: sorted class folder names; label ``i`` is ``class_names[i]``.
      files: ``(absolute Path, class_name)`` of every image that decoded, sorted by class then path.
      skipped: ``(Path, reason)`` of every file left out.
      odd_shapes: ``(Path, (height, width))`` of usable images that will be badly stretched: a side below the
        scan's ``min_side`` or a side ratio above its ``max_aspect`` (kept, but counted and warned about).
    """

    root: Path
    class_names: list
    files: list
    skipped: list
    odd_shapes: list = dataclasses.field(default_factory=list)

    def counts(self):
        """``{class_name: number of usable images}``."""
        counts = dict.fromkeys(self.class_names, 0)
        for _, class_name in self.files:
            counts[class_name] += 1
        return counts

    def report(self):
        """A JSON-ready summary for a run report: root, counts per class, skipped files and reasons."""
        return {
            "root": str(self.root),
            "num_classes": len(self.class_names),
            "num_images": len(self.files),
            "images_per_class": self.counts(),
            "num_skipped": len(self.skipped),
            "skipped": [{"path": str(path), "reason": reason} for path, reason in self.skipped],
            "num_odd_shapes": len(self.odd_shapes),
            "odd_shapes": [{"path": str(path), "height": h, "width": w} for path, (h, w) in self.odd_shapes],
        }


def _visible(path):
    return not path.name.startswith(".")


def find_image_root(path):
    """Returns the folder holding the class folders: ``path`` itself, or ``path/images`` (built-in layout).

    ``path/images`` is used when it is a folder with sub-folders and ``path`` has no other visible folder than
    ``images`` and ``masks``; otherwise ``path`` is the ImageFolder itself.

    Raises:
      DataError: ``path`` does not exist or is not a folder.
    """
    path = Path(path)
    expected = "expected <root>/<class_name>/<images> or <root>/images/<class_name>/<images>"
    if not path.exists():
        raise DataError(f"data folder {path} does not exist; {expected}")
    if not path.is_dir():
        raise DataError(f"data folder {path} is not a folder; {expected}")
    images = path / "images"
    folders = {child.name for child in path.iterdir() if child.is_dir() and _visible(child)}
    if images.is_dir() and folders <= {"images", "masks"} and any(c.is_dir() for c in images.iterdir()):
        return images
    return path


def mask_path(image_path, image_root, mask_dir=None):
    """Where an image's object mask lies: ``<mask root>/<class>/<stem>.png``.

    The mask root is ``mask_dir``, else ``masks/`` beside ``images/`` (the built-in layout); a plain
    ImageFolder has masks only through ``mask_dir`` (else ``None``). The file need not exist.
    """
    relative = Path(image_path).relative_to(image_root)
    if mask_dir is not None:
        base = Path(mask_dir)
    elif Path(image_root).name == "images":
        base = Path(image_root).parent / "masks"
    else:
        return None
    return base / relative.parent / f"{relative.stem}.png"


def load_masks(paths, image_size):
    """Binary object masks ``bool [N, S, S]`` (grey value >= 128), resized like the images (bilinear, no crop).

    Returns ``None`` when ``paths`` is empty or any path is ``None`` or not a file: the mask numbers of a set
    of images are measured on all of them or on none.
    """
    paths = list(paths)
    if not paths or not all(p is not None and Path(p).is_file() for p in paths):
        return None
    masks = []
    for path in paths:
        with Image.open(path) as mask:
            resized = mask.convert("L").resize((int(image_size), int(image_size)), Image.BILINEAR)
        masks.append(np.asarray(resized) >= 128)
    return np.stack(masks)


def _class_files(class_dir):
    """All visible files under a class folder (recursing into visible sub-folders), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        found.extend(Path(dirpath) / name for name in filenames if not name.startswith("."))
    return sorted(found)


def list_image_files(root):
    """Lists ``(path, class_name)`` for files with an accepted extension, without decoding them.

    Args:
      root: a data folder (see :func:`find_image_root`).

    Returns:
      ``(image_root, class_names, files, others)``: files are ``(Path, class_name)`` sorted by class then
      path; ``others`` are visible files with another extension.

    Raises:
      DataError: missing path, no class folders, or an empty class folder.
    """
    image_root = find_image_root(root)
    class_dirs = sorted((c for c in image_root.iterdir() if c.is_dir() and _visible(c)), key=lambda c: c.name)
    if not class_dirs:
        raise DataError(
            f"data folder {image_root} has no class folders; expected <root>/<class_name>/<images> "
            f"with extensions {', '.join(IMAGE_EXTENSIONS)}"
        )
    files, others = [], []
    for class_dir in class_dirs:
        candidates = _class_files(class_dir)
        if not candidates:
            raise DataError(f"class folder {class_dir} is empty; expected image files ({', '.join(IMAGE_EXTENSIONS)})")
        for path in candidates:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                files.append((path, class_dir.name))
            else:
                others.append(path)
    return image_root, [c.name for c in class_dirs], files, others


def _check(path):
    """``(reason, None)`` for a file that does not decode, else ``(None, (height, width))``."""
    try:
        return None, load_image(path).shape[:2]
    except BadImage as error:
        return error.reason, None


def scan_image_folder(root, min_images_per_class=1, progress=False, max_workers=None, min_side=16, max_aspect=4.0):
    """Finds the classes and images of a data folder and decodes every image once to check it.

    Args:
      root: ``<root>/<class_name>/<files>`` or a root holding ``images/<class_name>/``.
      min_images_per_class: a class with fewer usable images raises ``DataError``.
      progress: show a ``keras.utils.Progbar`` while decoding.
      max_workers: decoding threads (default: the CPU count, at most 8).
      min_side, max_aspect: an image with a side below ``min_side`` pixels, or a longer side more than
        ``max_aspect`` times its shorter one, is kept but listed in ``odd_shapes`` and one ``DataWarning``
        (every stage resizes to a square without keeping the aspect ratio).

    Returns:
      A :class:`FolderScan`. Skipped files are also reported in one ``DataWarning``.

    Raises:
      DataError: missing path, no class folders, an empty class folder, or a class with fewer than
        ``min_images_per_class`` usable images.

    Example:
      >>> scan = scan_image_folder("photos", min_images_per_class=10)  # doctest: +SKIP
      >>> scan.class_names, len(scan.files), scan.report()["num_skipped"]  # doctest: +SKIP
    """
    if int(min_images_per_class) < 1:
        raise DataError(f"min_images_per_class={min_images_per_class!r} must be at least 1")
    image_root, class_names, candidates, others = list_image_files(root)
    paths = [path for path, _ in candidates]
    bar = None
    if progress:
        import keras  # Only for the progress bar; reading folders does not need a backend otherwise.

        bar = keras.utils.Progbar(len(paths), unit_name="image")
    workers = max_workers or min(8, os.cpu_count() or 1)
    reasons, shapes = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for i, (reason, shape) in enumerate(pool.map(_check, paths)):
            reasons.append(reason)
            shapes.append(shape)
            if bar is not None:
                bar.update(i + 1)
    odd = [
        (path, (int(shape[0]), int(shape[1])))
        for path, shape in zip(paths, shapes)
        if shape is not None and (min(shape) < min_side or max(shape) > max_aspect * min(shape))
    ]
    files = [item for item, reason in zip(candidates, reasons) if reason is None]
    skipped = [(path, reason) for (path, _), reason in zip(candidates, reasons) if reason is not None]
    skipped += [
        (path, f"unsupported extension {path.suffix or '(none)'!r}; accepted: {', '.join(IMAGE_EXTENSIONS)}")
        for path in others
    ]
    skipped.sort()
    scan = FolderScan(root=image_root, class_names=class_names, files=files, skipped=skipped, odd_shapes=odd)
    if skipped:
        listed = "; ".join(f"{path}: {reason}" for path, reason in skipped[:_WARN_LISTED])
        extra = len(skipped) - _WARN_LISTED
        more = f"; and {extra} more (see the scan report)" if extra > 0 else ""
        warnings.warn(f"skipped {len(skipped)} file(s) in {image_root}: {listed}{more}", DataWarning, stacklevel=2)
    if odd:
        listed = "; ".join(f"{path}: {h}x{w}" for path, (h, w) in odd[:_WARN_LISTED])
        warnings.warn(
            f"{len(odd)} image(s) in {image_root} have a side below {min_side} px or an aspect ratio above "
            f"{max_aspect:g} and will be stretched to a square: {listed}",
            DataWarning,
            stacklevel=2,
        )
    for class_name, count in scan.counts().items():
        if count < min_images_per_class:
            raise DataError(
                f"class folder {image_root / class_name} has {count} usable image(s); expected at least "
                f"{min_images_per_class}"
            )
    return scan
