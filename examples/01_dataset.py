"""The built-in dataset, ``morsa_parts``, in five steps.

keras-morsa ships a procedural stand-in for the study's private photos: ten parts of a mini bench vise,
drawn as photographs (metal, light, shadows, blur, noise, JPEG). Every later stage reads it like any user
folder. Run from the repository root:

    python examples/01_dataset.py
"""

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from keras_morsa.data import morsa_parts

# 1. Build a small copy. The full dataset is `morsa_parts.load()`: 300 images per class at 256 px, drawn once
#    into ~/.keras/datasets/morsa_parts (or $KERAS_MORSA_HOME) and reused after that.
out = Path(tempfile.mkdtemp()) / "morsa_parts"
root = morsa_parts.build(out, images_per_class=4, image_size=128, seed=0, progress=False)

# 2. The layout is a plain image folder with a mask per image and a manifest written last.
print("classes:", ", ".join(morsa_parts.CLASS_NAMES))
print(
    "first files:",
    sorted(p.name for p in (root / "images" / "jaw").iterdir())[:2],
    sorted(p.name for p in (root / "masks" / "jaw").iterdir())[:2],
)

# 3. A mask marks the part's pixels (255) against everything else (0); Grad-CAM is scored against it later.
image = np.asarray(Image.open(root / "images" / "nut" / "nut_0.jpg"))
mask = np.asarray(Image.open(root / "masks" / "nut" / "nut_0.png"))
print(
    f"nut_0: image {image.shape}, part covers {np.mean(mask == 255):.0%} of the frame, "
    f"mean colour on the part {image[mask == 255].mean(axis=0).round()}"
)

# 4. Image i of a class depends only on (seed, class, i): drawing it again gives the same pixels, at any
#    time and in any process. (The saved JPEG adds its own compression on top.)
rgb, again, quality = morsa_parts.render_image("nut", 0, image_size=128, seed=0)
print("same mask when drawn again:", np.array_equal(again, mask), f"(saved at JPEG quality {quality})")

# 5. How hard the dataset is comes from a few knobs, all drawn independently of the class. Pull the
#    look-alike classes (jaw/jaw_plate, lead_screw/clamp_screw/pin, nut/washer) fully together:
print("default knobs:", morsa_parts.Difficulty())
harder = morsa_parts.Difficulty(alike=1.0)
pair = [morsa_parts.render_image(name, 0, image_size=128, difficulty=harder)[0] for name in ("nut", "washer")]
Image.fromarray(np.concatenate(pair, axis=1)).save(out / "nut_washer_alike.png")
print("a nut and a washer with alike=1.0:", out / "nut_washer_alike.png")

# Finally, a contact sheet to look at: the first 2 images of every class.
sheet = morsa_parts.contact_sheet(root, out / "contact_sheet.png", per_class=2, tile=128)
print("contact sheet:", sheet)
