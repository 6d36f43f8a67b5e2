"""Synthetic image folders from trained FastGAN runs (behind ``bin/generate``), and interpolation GIFs.

``generate(gan_workdir, out_dir, num_images)`` loads each finished class's EMA generator
(``<gan_workdir>/<class>/generator_ema.keras``, written by :func:`~keras_morsa.training.train_gan.train_gan`)
and writes the synthetic-folder layout of ``docs/DESIGN.md``:

- ``<out_dir>/<class>/<class>_seed<seed>_<index>.png``: image ``index`` comes from the latent drawn with
  ``numpy.random.default_rng([seed, index])``, so each file is reproducible on its own;
- ``<out_dir>/manifest.csv``: one row per image (path, class_name, checkpoint_step, seed, latent_index);
- ``<out_dir>/sources.txt``: the union of the GAN runs' ``sources.txt`` (SHA-256 of their training images),
  which ``splits.check_no_leak`` reads; written before the first image, so a killed run's partial folder
  is checked as strictly as a finished one;
- with ``interpolate=True``, ``<out_dir>/interpolation_<class>.gif``: a loop through a few fixed latents
  (outside the class folders, so the folder stays an ImageFolder of PNGs).

It is idempotent and resumable: images already present for the same seed are kept, not redrawn; every file
is written atomically, so a killed run leaves no half-written PNG behind.
"""

import contextlib
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_morsa import io
from keras_morsa.data.splits import read_sources
from keras_morsa.errors import DataError, UserError
from keras_morsa.models.saving import load_model
from keras_morsa.training.callbacks import images_to_uint8, save_png
# train_gan imports keras_morsa.models.fastgan, which registers Generator for load_model.
from keras_morsa.training.train_gan import DONE_FILE, GENERATOR_FILE, SOURCES_FILE

MANIFEST_FIELDS = ("path", "class_name", "checkpoint_step", "seed", "latent_index")
# Keyframe latents of the GIFs are drawn from their own stream, apart from the image latents.
_INTERPOLATION_STREAM = 1 << 20


def finished_classes(gan_workdir):
    """Names of the classes of a GAN workdir that have a final generator (``done.json``), sorted."""
    root = Path(gan_workdir)
    if not root.is_dir():
        raise UserError(f"--gan_workdir={gan_workdir}: no such folder; expected the --workdir of bin/train_gan")
    return sorted(d.name for d in root.iterdir() if (d / DONE_FILE).exists() and (d / GENERATOR_FILE).exists())


def latent(seed, index, nz):
    """The latent vector of image ``index`` for ``seed`` (float32 [nz])."""
    return np.random.default_rng([seed, index]).standard_normal(nz).astype("float32")


def load_generator(class_dir):
    """The EMA generator saved by ``train_gan`` in ``class_dir`` and the step it was saved at."""
    class_dir = Path(class_dir)
    generator = load_model(class_dir / GENERATOR_FILE)
    return generator, int(io.read_json(class_dir / DONE_FILE)["step"])


def _images(generator, latents, batch_size):
    out = []
    for start in range(0, len(latents), batch_size):
        chunk = latents[start:start + batch_size]
        # Every call gets the same input shape: eager JAX compiles each op per shape, so ragged last
        # batches would recompile the whole network. Inference-mode outputs do not depend on batch mates.
        padded = np.zeros((batch_size, latents.shape[1]), "float32")
        padded[:len(chunk)] = chunk
        images, _ = generator(keras.ops.convert_to_tensor(padded), training=False)
        out.append(images_to_uint8(images)[:len(chunk)])
    return np.concatenate(out)


def generate(gan_workdir, out_dir, num_images, class_names=None, seed=0, interpolate=False, batch_size=16,
             progress=True):
    """Writes ``num_images`` EMA-generator PNGs per class, the manifest and ``sources.txt``.

    Args:
        gan_workdir: the ``--workdir`` of ``bin/train_gan`` (``<gan_workdir>/<class>/generator_ema.keras``).
        out_dir: the synthetic folder to write (created; existing images for ``seed`` are reused).
        num_images: images per class (>= 1).
        class_names: classes to generate; ``None``: every finished class of ``gan_workdir``.
        seed: latent seed; image ``i`` uses ``latent(seed, i, nz)``.
        interpolate: also write ``interpolation_<class>.gif`` per class (:func:`interpolation_gif`).
        batch_size: latents per generator call.
        progress: show a progress bar.

    Returns:
        The manifest rows of this call's images (dicts with the keys of ``MANIFEST_FIELDS``).

    Raises:
        UserError: no such workdir, an unfinished or unknown class, or ``num_images`` < 1.
        DataError: a class folder lacks its ``sources.txt`` (the leak check could not be trusted).

    Example:
        generate("workdirs/gan", "workdirs/synthetic", 100)   # every finished class, 100 PNGs each
    """
    if int(num_images) < 1:
        raise UserError(f"--num_images={num_images}: expected a positive number of images per class")
    finished = finished_classes(gan_workdir)
    if class_names is None:
        class_names = finished
        if not class_names:
            raise UserError(f"--gan_workdir={gan_workdir} has no finished class (<class>/{DONE_FILE} and "
                            f"{GENERATOR_FILE}); run bin/train_gan first")
    for name in class_names:
        if name not in finished:
            raise UserError(f"--class={name!r} has no finished generator in {gan_workdir}; finished classes: "
                            + (", ".join(finished) or "none"))
    out_dir = Path(out_dir)
    class_dirs = [Path(gan_workdir) / name for name in class_names]
    for class_dir in class_dirs:
        if not (class_dir / SOURCES_FILE).exists():
            raise DataError(f"{class_dir / SOURCES_FILE} is missing: the images its generator learned from are "
                            "unknown, so the leak check could not be trusted; retrain this class")
    with contextlib.ExitStack() as held:
        return _generate(out_dir, class_names, class_dirs, int(num_images), seed, interpolate, batch_size,
                         progress, held)


def _generate(out_dir, class_names, class_dirs, num_images, seed, interpolate, batch_size, progress, held):
    """The image loop of :func:`generate`; ``held`` (an ExitStack) keeps ``out_dir``'s lock until it returns."""
    rows = []
    bar = keras.utils.Progbar(len(class_names) * num_images, verbose=int(progress))
    for name, class_dir in zip(class_names, class_dirs):
        with io.folder_lock(class_dir):  # not while train_gan continues this class
            generator, step = load_generator(class_dir)
        if not rows:  # once a generator loads (a corrupt one writes nothing), before the first image
            held.enter_context(io.folder_lock(out_dir))  # one generate per synthetic folder
            io.remove_temp_files(out_dir)  # a killed run's half-written PNGs
            _write_sources(out_dir, class_dirs)
        paths = [out_dir / name / f"{name}_seed{seed}_{i:05d}.png" for i in range(num_images)]
        todo = [i for i, path in enumerate(paths) if not path.exists()]
        bar.add(len(paths) - len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            z = np.stack([latent(seed, i, generator.nz) for i in batch])
            for i, image in zip(batch, _images(generator, z, batch_size)):
                save_png(paths[i], image)
            bar.add(len(batch))
        rows += [{"path": p.relative_to(out_dir).as_posix(), "class_name": name, "checkpoint_step": step,
                  "seed": seed, "latent_index": i} for i, p in enumerate(paths)]
        if interpolate:
            interpolation_gif(generator, out_dir / f"interpolation_{name}.gif", seed=seed)
    _write_manifest(out_dir, rows)
    print(f"{len(rows)} images of {len(class_names)} class(es) in {out_dir} (manifest.csv, sources.txt)")
    return rows


def _write_sources(out_dir, class_dirs):
    """Merges the classes' ``sources.txt`` into ``out_dir/sources.txt`` before any image is written, so a
    folder left by a killed run is leak-checked against the same real images as a finished one."""
    path = out_dir / SOURCES_FILE
    sources = read_sources(path) if path.exists() else set()
    for class_dir in class_dirs:
        sources |= read_sources(class_dir / SOURCES_FILE)
    with io.atomic_write(path, "w") as f:
        f.writelines(f"{sha}\n" for sha in sorted(sources))


def _write_manifest(out_dir, rows):
    """Merges ``rows`` into ``out_dir/manifest.csv``, keeping earlier rows whose images still exist."""
    path = out_dir / "manifest.csv"
    merged = {row["path"]: row for row in (io.read_csv(path) if path.exists() else [])
              if (out_dir / row["path"]).exists()}
    merged.update({row["path"]: row for row in rows})
    ordered = sorted(merged.values(), key=lambda r: (r["class_name"], int(r["seed"]), int(r["latent_index"])))
    io.write_csv(path, ordered, MANIFEST_FIELDS)


def slerp(a, b, t):
    """Spherical interpolation between latents ``a`` and ``b`` at ``t`` in [0, 1] (linear when parallel)."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return (1.0 - t) * a + t * b
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolation_gif(generator, path, num_keyframes=4, frames_between=8, seed=0, frame_ms=80):
    """Writes a looping GIF that walks the latent space through ``num_keyframes`` fixed latents.

    Consecutive keyframes (the last back to the first) are joined by spherical interpolation, so the GIF
    has ``num_keyframes * frames_between`` frames.

    Args:
        generator: a FastGAN ``Generator`` (attribute ``nz``).
        path: the ``.gif`` to write (atomically).
        num_keyframes: latents visited (>= 2), drawn from ``seed``.
        frames_between: frames from one keyframe to the next (>= 1).
        seed: keyframe seed.
        frame_ms: display time of each frame.

    Returns:
        The number of frames.
    """
    if num_keyframes < 2 or frames_between < 1:
        raise UserError(f"num_keyframes={num_keyframes}, frames_between={frames_between}: expected >= 2 and >= 1")
    keys = np.random.default_rng([seed, _INTERPOLATION_STREAM]).standard_normal((num_keyframes, generator.nz))
    z = np.stack([slerp(keys[k], keys[(k + 1) % num_keyframes], t / frames_between)
                  for k in range(num_keyframes) for t in range(frames_between)]).astype("float32")
    frames = [Image.fromarray(image) for image in _images(generator, z, 16)]
    with io.atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return len(frames)
