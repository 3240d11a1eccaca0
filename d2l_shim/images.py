"""Decode an image folder once into a uint8 array, framework-free.

Decoding PNGs is far slower than a training step's data needs, so the folder is
decoded a single time and cached next to it as ``<folder>-<size>px.npz``; every
later epoch (and every later run) reads the array. The cache is rebuilt when the
list of image files changes.
"""
import os
import tempfile

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file."""


def list_images(folder):
    """Sorted paths, relative to ``folder``, of every image file below it."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if name.lower().endswith(IMAGE_SUFFIXES):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


def to_rgb_on_white(image):
    """Composite an image with transparency onto white; return RGB.

    Sprites keep their background transparent; dropping the alpha channel would
    turn it black (or into whatever colour the transparent pixels store).
    """
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(path, size):
    """Read one file into a (size, size, 3) uint8 array, resized with Lanczos."""
    try:
        with Image.open(path) as image:
            image.load()
            rgb = to_rgb_on_white(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(
            f"cannot read image {path}: {err}. Delete or replace this file "
            "(re-extract the archive with download_extract) and run again.") from err
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def spread_indices(total, count):
    """``count`` indices spread evenly over ``range(total)`` (all if count >= total)."""
    if count is None or count >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, count).round().astype(np.int64)


def cache_path(folder, size):
    folder = os.path.normpath(folder)
    return f"{folder}-{size}px.npz"


def load_cache(path, files):
    """The cached array if it was made from exactly ``files``, else None."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as cached:
            if cached["files"].tolist() == files:
                return cached["images"]
    except (OSError, ValueError, KeyError):
        pass  # an unreadable cache is rebuilt below
    return None


def save_cache(path, images, files):
    """Write the cache atomically so a crash never leaves half a file behind."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, images=images, files=np.array(files))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_image_folder(folder, size=64, limit=None):
    """All images below ``folder`` as one uint8 array of shape (N, size, size, 3).

    Images are composited on white, resized to ``size`` x ``size`` and decoded
    only once (see the module docstring). ``limit`` keeps that many images
    spread evenly over the sorted file list, for short runs.
    """
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) below {folder}: "
            "check the path returned by download_extract")
    path = cache_path(folder, size)
    images = load_cache(path, files)
    if images is None:
        images = np.stack([decode_image(os.path.join(folder, f), size) for f in files])
        save_cache(path, images, files)
    return images[spread_indices(len(images), limit)]
