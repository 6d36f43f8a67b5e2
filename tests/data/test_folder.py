"""Reading image folders: every format and mode, every kind of bad file, every structural error."""

import contextlib
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_morsa.data import folder
from keras_morsa.errors import DataError

# Normal images stay at or under 16x16 = 256 pixels; the bomb is 64x64 = 4096 > 2 * 300, Pillow's error limit
# while MAX_IMAGE_PIXELS is patched to 300 during the scan.
SMALL_LIMIT = 300
RNG = np.random.default_rng(0)
NOISE = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
# JPEG is lossy (and subsamples colour): compare JPEGs on a smooth image.
SMOOTH = np.stack([*np.meshgrid(np.arange(16) * 16, np.arange(16) * 16), np.full((16, 16), 128)], -1)
SMOOTH = SMOOTH.astype(np.uint8)


def _png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _exif_rotated(path):
    # 16 wide, 8 high, left half red, right half blue, EXIF orientation 6 (display rotated 90 degrees clockwise).
    image = Image.new("RGB", (16, 8), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 8))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, quality=95, exif=exif)


def _png16_rgb(path, array):
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), written chunk by chunk."""
    height, width = array.shape[:2]
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _palette_with_transparency(path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((0, 0), 1)
    image.save(path, transparency=0)


def _build_corpus(root):
    """Writes the corpus; returns {relative path: expected outcome} for the files that must load."""
    good, bad = root / "good", root / "bad"
    for d in (good, bad, root / "écrou_螺母", root / ".ipynb_checkpoints", good / ".ipynb_checkpoints"):
        d.mkdir(parents=True)
    Image.fromarray(NOISE).save(good / "plain.png")
    Image.fromarray(NOISE).save(good / "lossless.webp", lossless=True)
    Image.fromarray(NOISE).save(good / "bitmap.bmp")
    Image.fromarray(SMOOTH).save(good / "UPPER.JPG", quality=95)
    Image.fromarray(SMOOTH).save(good / "photo.jpeg", quality=95)
    Image.fromarray(np.full((8, 8), 100, np.uint8), "L").save(good / "gray.png")
    Image.fromarray(NOISE).convert("P").save(good / "palette.png")
    _palette_with_transparency(good / "palette_transparent.png")
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red: white
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue: blue
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black: mid gray
    Image.fromarray(rgba, "RGBA").save(good / "rgba.png")
    Image.fromarray(np.array([[0, 65535], [257 * 100, 257 * 200]], np.uint16)).save(good / "sixteen_bit.png")
    _png16_rgb(good / "sixteen_bit_rgb.png", np.array([[[65535, 0, 257 * 100], [0, 257 * 50, 0]]], np.uint16))
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(good / "cmyk.jpg", quality=95)
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 255, 0))]
    frames[0].save(good / "animated.gif", save_all=True, append_images=frames[1:])
    _exif_rotated(good / "rotated.jpg")
    Image.fromarray(NOISE).save(root / "écrou_螺母" / "ñandú 1.png")
    # Hidden entries: ignored, neither files nor skipped.
    (root / ".DS_Store").write_bytes(b"\0\1junk")
    (good / ".DS_Store").write_bytes(b"\0\1junk")
    Image.fromarray(NOISE).save(root / ".ipynb_checkpoints" / "x.png")
    Image.fromarray(NOISE).save(good / ".ipynb_checkpoints" / "x.png")
    # Bad files, each with the reason it must be skipped for.
    png = _png_bytes(NOISE)
    corrupt = bytearray(png)
    for i in range(60, 120):
        corrupt[i] ^= 0xFF
    (bad / "corrupt.png").write_bytes(bytes(corrupt))
    (bad / "truncated.png").write_bytes(png[: len(png) // 2])
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("not an image")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(bad / "bomb.png")
    (bad / "notes.txt").write_text("a note")
    Image.fromarray(NOISE).save(bad / "ok.png")
    return {
        "corrupt.png": "OSError",
        "truncated.png": "truncated",
        "empty.jpg": "empty file",
        "text.jpg": "not a recognised image",
        "bomb.png": "decompression-bomb",
        "notes.txt": "unsupported extension",
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    reasons = _build_corpus(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image, "MAX_IMAGE_PIXELS", SMALL_LIMIT)
        with pytest.warns(folder.DataWarning, match="skipped 6 file") as caught:
            scan = folder.scan_image_folder(root)
    return root, scan, reasons, str(caught[0].message)


def test_scan_finds_classes_files_and_skips(corpus):
    root, scan, reasons, _ = corpus
    assert scan.root == root
    assert scan.class_names == sorted(["bad", "good", "écrou_螺母"])
    names = {path.name for path, _ in scan.files}
    assert names == {
        "plain.png",
        "lossless.webp",
        "bitmap.bmp",
        "UPPER.JPG",
        "photo.jpeg",
        "gray.png",
        "palette.png",
        "palette_transparent.png",
        "rgba.png",
        "sixteen_bit.png",
        "sixteen_bit_rgb.png",
        "cmyk.jpg",
        "animated.gif",
        "rotated.jpg",
        "ñandú 1.png",
        "ok.png",
    }
    assert scan.counts() == {"bad": 1, "good": 14, "écrou_螺母": 1}
    skipped = {path.name: reason for path, reason in scan.skipped}
    assert set(skipped) == set(reasons)
    for name, expected in reasons.items():
        assert expected in skipped[name], (name, skipped[name])


def test_warning_lists_every_skipped_file_with_reason(corpus):
    _, scan, _, message = corpus
    for path, reason in scan.skipped:
        assert f"{path}: {reason}" in message


def test_report_is_json_ready(corpus):
    _, scan, _, _ = corpus
    report = json.loads(json.dumps(scan.report()))
    assert report["num_images"] == 16 and report["num_skipped"] == 6 and report["num_classes"] == 3
    assert report["images_per_class"]["écrou_螺母"] == 1
    assert {entry["path"].rsplit("/", 1)[-1] for entry in report["skipped"]} >= {"bomb.png", "empty.jpg"}


def test_every_scanned_file_loads_as_uint8_rgb(corpus):
    _, scan, _, _ = corpus
    for path, _ in scan.files:
        image = folder.load_image(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, path


@pytest.mark.parametrize("name", ["plain.png", "lossless.webp", "bitmap.bmp"])
def test_lossless_formats_are_exact(corpus, name):
    root = corpus[0]
    np.testing.assert_array_equal(folder.load_image(root / "good" / name), NOISE)


def test_jpeg_close_to_source(corpus):
    root = corpus[0]
    for name in ("UPPER.JPG", "photo.jpeg"):
        error = np.abs(folder.load_image(root / "good" / name).astype(int) - SMOOTH)
        assert error.mean() < 3 and error.max() <= 16, name


def test_modes_convert_to_rgb(corpus):
    good = corpus[0] / "good"
    np.testing.assert_array_equal(folder.load_image(good / "gray.png"), np.full((8, 8, 3), 100, np.uint8))
    palette = Image.open(good / "palette.png").convert("RGB")
    np.testing.assert_array_equal(folder.load_image(good / "palette.png"), np.asarray(palette))
    sixteen = folder.load_image(good / "sixteen_bit.png")
    np.testing.assert_array_equal(sixteen[..., 0], [[0, 255], [100, 200]])
    np.testing.assert_array_equal(sixteen[..., 0], sixteen[..., 2])
    np.testing.assert_array_equal(folder.load_image(good / "sixteen_bit_rgb.png")[0], [[255, 0, 100], [0, 50, 0]])
    cmyk = folder.load_image(good / "cmyk.jpg")
    np.testing.assert_allclose(cmyk[0, 0], (255, 0, 255), atol=3)  # no cyan, full magenta ink
    np.testing.assert_array_equal(folder.load_image(good / "animated.gif")[0, 0], (255, 0, 0))  # first frame


def test_transparency_is_composited_on_white(corpus):
    good = corpus[0] / "good"
    rgba = folder.load_image(good / "rgba.png")
    np.testing.assert_array_equal(rgba[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(rgba[0, 1], (0, 0, 255))
    np.testing.assert_allclose(rgba[0, 2], (127, 127, 127), atol=1)
    palette = folder.load_image(good / "palette_transparent.png")
    np.testing.assert_array_equal(palette[0, 0], (0, 255, 0))
    np.testing.assert_array_equal(palette[0, 1], (255, 255, 255))


def test_exif_orientation_is_applied(corpus):
    image = folder.load_image(corpus[0] / "good" / "rotated.jpg")
    assert image.shape == (16, 8, 3)  # stored 16 wide x 8 high, displayed 8 wide x 16 high
    assert image[2, 4, 0] > 200 and image[2, 4, 2] < 50  # left half (red) is now on top
    assert image[13, 4, 2] > 200 and image[13, 4, 0] < 50  # right half (blue) is now at the bottom


def test_load_image_raises_bad_image_with_path(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    with pytest.raises(folder.BadImage, match="broken.png") as info:
        folder.load_image(path)
    assert isinstance(info.value, DataError) and info.value.path == path and info.value.reason


def test_builtin_layout_root_resolves_to_images(tmp_path):
    for sub in ("images/jaw", "masks/jaw"):
        (tmp_path / sub).mkdir(parents=True)
    Image.fromarray(NOISE).save(tmp_path / "images" / "jaw" / "jaw_0.jpg")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "masks" / "jaw" / "jaw_0.png")
    (tmp_path / "dataset.json").write_text("{}")
    scan = folder.scan_image_folder(tmp_path)
    assert scan.root == tmp_path / "images" and scan.class_names == ["jaw"]
    assert [path.name for path, _ in scan.files] == ["jaw_0.jpg"]


def _make(tmp_path, layout):
    for relative, content in layout.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "dir":
            path.mkdir(exist_ok=True)
        elif content == "image":
            Image.fromarray(NOISE).save(path)
        else:
            path.write_bytes(content)


@pytest.mark.parametrize(
    "layout, where, minimum, expected",
    [
        ({}, "missing", 1, "does not exist"),
        ({"loose.png": "image"}, "", 1, "has no class folders"),
        ({"a/x.png": "image", "b": "dir"}, "b", 1, "is empty"),
        ({"a/x.png": "image", "b/.DS_Store": b"x"}, "b", 1, "is empty"),
        ({"a/x.png": "image", "b/x.png": b""}, "b", 1, "has 0 usable image"),
        ({"a/x.png": "image", "a/y.png": "image", "b/x.png": "image"}, "b", 2, "expected at least 2"),
    ],
)
def test_structural_errors_name_the_path(tmp_path, layout, where, minimum, expected):
    _make(tmp_path, layout)
    target = tmp_path / where
    root = target if where == "missing" else tmp_path
    # The all-bad class also warns about its skipped file before the error.
    warns = pytest.warns(folder.DataWarning) if b"" in layout.values() else contextlib.nullcontext()
    with warns, pytest.raises(DataError, match=expected) as info:
        folder.scan_image_folder(root, min_images_per_class=minimum)
    message = str(info.value)
    assert str(target) in message and "\n" not in message


def test_root_that_is_a_file_and_bad_minimum(tmp_path):
    path = tmp_path / "file.png"
    Image.fromarray(NOISE).save(path)
    with pytest.raises(DataError, match=f"{path}.*not a folder"):
        folder.scan_image_folder(path)
    with pytest.raises(DataError, match="min_images_per_class=0"):
        folder.scan_image_folder(tmp_path, min_images_per_class=0)


def test_progress_bar_and_thread_count_do_not_change_the_scan(corpus, capsys):
    root, scan, _, _ = corpus
    with pytest.MonkeyPatch.context() as patch, pytest.warns(folder.DataWarning):
        patch.setattr(Image, "MAX_IMAGE_PIXELS", SMALL_LIMIT)
        again = folder.scan_image_folder(root, progress=True, max_workers=1)
    assert again == scan
    assert "21/21" in capsys.readouterr().out  # the 21 files with an image extension were decoded


def test_tiny_and_extreme_aspect_images_are_counted_and_kept(tmp_path):
    sizes = {"ok": (32, 40), "tiny": (1, 1), "thin": (10, 200), "wide": (20, 100)}
    (tmp_path / "a").mkdir()
    for name, (h, w) in sizes.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(tmp_path / "a" / f"{name}.png")
    with pytest.warns(
        folder.DataWarning,
        match=r"3 image\(s\) in .* side below 16 px or an aspect ratio above 4 "
        r"and will be stretched to a square: .*thin.png: 10x200; .*tiny.png: 1x1; .*wide.png: 20x100",
    ):
        scan = folder.scan_image_folder(tmp_path)
    assert len(scan.files) == 4  # kept
    report = scan.report()
    assert report["num_odd_shapes"] == 3
    assert [(r["height"], r["width"]) for r in report["odd_shapes"]] == [(10, 200), (1, 1), (20, 100)]
    json.dumps(report)
    # Configurable: with a 1-px minimum and a 10:1 limit only the 20:1 image is odd.
    with pytest.warns(folder.DataWarning, match=r"1 image\(s\) .*thin.png: 10x200$"):
        scan = folder.scan_image_folder(tmp_path, min_side=1, max_aspect=10)
    assert [p.name for p, _ in scan.odd_shapes] == ["thin.png"]


def test_masks_sit_beside_the_images_or_under_mask_dir(tmp_path):
    images = tmp_path / "images"
    (images / "a").mkdir(parents=True)
    (tmp_path / "masks" / "a").mkdir(parents=True)
    mask = np.zeros((8, 8), np.uint8)
    mask[:4] = 255
    Image.fromarray(mask, mode="L").save(tmp_path / "masks" / "a" / "x.png")
    image = images / "a" / "x.jpg"
    assert folder.mask_path(image, images) == tmp_path / "masks" / "a" / "x.png"
    assert folder.mask_path(image, images, mask_dir=tmp_path / "m") == tmp_path / "m" / "a" / "x.png"
    assert folder.mask_path(tmp_path / "plain" / "a" / "x.jpg", tmp_path / "plain") is None
    loaded = folder.load_masks([folder.mask_path(image, images)], 4)
    assert loaded.dtype == bool and loaded.shape == (1, 4, 4)
    assert loaded[0, :2].all() and not loaded[0, 2:].any()
    assert folder.load_masks([folder.mask_path(image, images), tmp_path / "missing.png"], 4) is None
    assert folder.load_masks([None], 4) is None and folder.load_masks([], 4) is None
