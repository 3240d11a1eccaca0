"""Decode an image folder once into a uint8 array, framework-free.

Decoding PNGs is far slower than a training step's data needs, so the folder is
decoded a single time and cached next to it as ``<folder>-<size>px.npz``; every
later epoch (and every later run) reads the array. The cache is rebuilt when an
image file is added, removed or changed (its size or modification time), or when
the way images are decoded changes (``CACHE_VERSION``).

Images with transparency (RGBA, LA, palette images with a transparent colour)
are composited on white, so sprites drawn on a transparent background look as
intended. A file that cannot be decoded raises :class:`ImageReadError` naming
it; it is never skipped silently.
"""
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .files import write_atomically

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

#: Bump when decoding changes, so caches written by older code are rebuilt.
CACHE_VERSION = 2


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


def fingerprint(folder, files):
    """One string per file, ``path<TAB>size<TAB>mtime_ns``: what the cache is of.

    Size and modification time change whenever a file is rewritten, which is
    far cheaper to check than hashing every image on every run.
    """
    entries = []
    for relative in files:
        info = os.stat(os.path.join(folder, relative))
        entries.append(f"{relative}\t{info.st_size}\t{info.st_mtime_ns}")
    return entries


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
    # Pillow reports broken files with any of these, depending on the format
    # and on where the data stops making sense.
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError,
            SyntaxError, ValueError, EOFError) as err:
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


def hold_out(images, every=10, limit=None):
    """Split ``images`` (N, ...) into (training images, held-out images).

    Every ``every``-th image is held out, so both parts sample the whole
    collection; a sample-quality number compares generated images with images
    the generator never trained on. ``limit`` keeps at most that many training
    images, spread evenly (for short runs).
    """
    if not isinstance(every, int) or every < 2:
        raise ValueError(f"every={every!r}: hold out one image in `every`, an integer >= 2")
    is_held_out = np.arange(len(images)) % every == 0
    training = images[~is_held_out]
    return training[spread_indices(len(training), limit)], images[is_held_out]


def cache_path(folder, size):
    """Where the decoded array of ``folder`` at ``size`` pixels is kept."""
    folder = os.path.normpath(folder)
    return f"{folder}-{size}px.npz"


def load_cache(path, stamp):
    """The cached array if it was made from exactly ``stamp``, else None."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as cached:
            if (int(cached["version"]) == CACHE_VERSION
                    and cached["files"].tolist() == stamp):
                return cached["images"]
    except (OSError, ValueError, KeyError, EOFError):
        pass  # an unreadable or older cache is rebuilt by the caller
    return None


def save_cache(path, images, stamp):
    """Write the cache atomically so a crash never leaves half a file behind."""
    write_atomically(path, lambda file: np.savez(
        file, images=images, files=np.array(stamp), version=np.array(CACHE_VERSION)))


def _check_limit(limit):
    if limit is not None and (isinstance(limit, bool)
                              or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ValueError(f"limit must be None or a positive number of images, "
                         f"got {limit!r}")


def read_image_folder(folder, size=64, limit=None):
    """All images below ``folder`` as one uint8 array of shape (N, size, size, 3).

    Images are composited on white, resized to ``size`` x ``size`` and decoded
    only once (see the module docstring). ``limit`` keeps that many images
    spread evenly over the sorted file list, for short runs. A file that is not
    a readable image raises :class:`ImageReadError` naming it.
    """
    _check_limit(limit)
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) below {folder}: "
            "check the path returned by download_extract")
    path = cache_path(folder, size)
    stamp = fingerprint(folder, files)
    images = load_cache(path, stamp)
    if images is None:
        images = np.stack([decode_image(os.path.join(folder, f), size) for f in files])
        save_cache(path, images, stamp)
    return images[spread_indices(len(images), limit)]
