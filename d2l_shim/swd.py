"""Sliced Wasserstein distance (SWD) between two image sets, in NumPy only.

A sample-quality number that needs no downloaded network (unlike FID), so it
runs offline in every environment. It follows Karras et al. (2018),
"Progressive Growing of GANs for Improved Quality, Stability, and Variation",
section 5 and appendix D, and their reference code
(``metrics/sliced_wasserstein.py`` in tkarras/progressive_growing_of_gans):

1. Build a Laplacian pyramid of every image (5x5 binomial filter, halve the
   size per level) down to 16x16: for 64x64 images the levels are the 64x64
   and 32x32 band-pass (Laplacian) images and the 16x16 low-pass (Gaussian)
   image. Each level describes the images at one scale.
2. At every level, cut ``patches_per_image`` random 7x7 neighbourhoods out of
   every image and flatten each into a 7*7*C descriptor (147-D for RGB).
3. Normalise each set's descriptors per channel (mean and standard deviation
   over all patches and pixels of that level, of that set alone).
4. Project both sets onto random unit directions, sort the projections and
   average the absolute differences of the sorted values: that is the 1-D
   Wasserstein-1 distance per direction, averaged over directions.

The result is reported per level and averaged over levels, multiplied by 1e3
as in the paper's tables. Lower is better; 0 means the same patch statistics.

Choices, and why (the reference is followed unless noted):

* Input convention: channels-last images ``(N, H, W, C)``, either uint8 in
  [0, 255] or floating point in [0, 1]. :func:`images_from_tanh` converts a
  tanh generator's output. The reference also feeds uint8 images.
* Normalisation is per set, as in the reference (``finalize_descriptors`` is
  called on the real and on the fake descriptors separately). A consequence
  worth knowing: SWD ignores a per-channel brightness or contrast change that
  is the same for every image, at every level. (It is also why [0, 1] and
  [0, 255] inputs give the same value.) A channel that is constant over a
  whole set is left at zero instead of dividing by a zero deviation.
* Common random numbers (not in the reference, which draws positions for each
  set separately): both sets use the same patch positions (image i of either
  set gets the same positions) and the same directions. Each set is still a
  uniform random sample of its patches, but the difference between the sets
  is no longer mixed with the noise of two separate draws: identical sets
  give exactly 0 (with separate draws, ~8.5 for 688 emoji), and a small
  change to the images gives a small value. Two unrelated sets come out a
  little lower than with separate draws (688 even- vs odd-numbered emoji, 64
  patches per image: 11.0-11.3 against 11.7-12.7). It requires both sets to
  have the same number of images, as the reference's equal-shape assert does.
* Sample size matters: like any Wasserstein estimate from samples, the value
  for two samples of one distribution shrinks as they grow (emoji, even vs
  odd: ~33 for 128 images each with 32 patches per image, 9.4 for 688 with
  the defaults). Compare values only at equal N and settings.
* ``directions`` random directions in chunks of 128: the reference's
  ``dir_repeats=4, dirs_per_repeat=128`` is ``directions=512``; averaging
  over all 512 is the same as averaging the four repeat averages.
* Seeding: one ``numpy.random.Generator`` per pyramid level, spawned from
  ``seed``, so a level's value does not depend on the other levels; NumPy
  1.23.5 and 2.4 give the same values.
* Speed: sorting dominates: ``2 x levels x directions x N x
  patches_per_image`` float32 numbers, 390 million for 1,000 64x64 images
  against 1,000 with the defaults: ~17 s of CPU time with NumPy 2.4, ~21 s
  with 1.23. NumPy's sorts and large array operations release the GIL, so
  the two sets are handled in two threads (12 s of wall time measured on a
  busy two-core machine). ``directions=128`` costs about 40% of that and
  changed the emoji values by < 1%; fewer patches per image is cheaper still
  but raises the value two samples of one distribution get.
"""
import re
import statistics
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ['sliced_wasserstein_distance', 'images_from_tanh', 'summary', 'parse_summary',
           'laplacian_pyramid', 'pyramid_resolutions']

#: Side of the square neighbourhood turned into one descriptor.
PATCH_SIZE = 7
#: The pyramid stops at the last level at least this large.
SMALLEST_LEVEL = 16
#: Directions projected (and sorted) at once; the reference's dirs_per_repeat.
DIRECTIONS_PER_CHUNK = 128
#: Values are reported times 1e3, the unit of the paper's tables.
REPORT_SCALE = 1e3
#: Fewer images than this do not describe a distribution at all.
MIN_IMAGES = 2
#: 1-D binomial filter; its outer product is the reference's 5x5 Gaussian.
BINOMIAL_5 = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16


# ------------------------------------------------------------ pyramid ----

def pyramid_resolutions(size):
    """Sides of the pyramid levels of ``size`` x ``size`` images, largest first.

    Halves ``size`` while the result is at least 16: 64 -> [64, 32, 16].
    """
    sides = []
    while size >= SMALLEST_LEVEL:
        sides.append(size)
        if size % 2:
            break  # an odd side cannot be halved exactly
        size //= 2
    return sides


def blur(images, gain=1.0):
    """Filter (N, H, W, C) float32 images with the 5x5 binomial filter.

    Returns the same shape. Edges are mirrored without repeating the border
    pixel (``np.pad`` 'reflect', SciPy's 'mirror', OpenCV's default), as in
    the reference. The filter is separable, so rows and columns are filtered
    one after the other: 10 multiply-adds per pixel instead of 25.
    """
    height, width = images.shape[1:3]
    taps = BINOMIAL_5 * np.float32(np.sqrt(gain))  # half the gain per pass
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect')
    rows = sum(tap * padded[:, i:i + height] for i, tap in enumerate(taps))
    return sum(tap * rows[:, :, i:i + width] for i, tap in enumerate(taps))


def pyramid_down(images):
    """Blur and keep every second pixel: (N, H, W, C) -> (N, H/2, W/2, C)."""
    return blur(images)[:, ::2, ::2]


def pyramid_up(images):
    """Double the size: (N, H, W, C) -> (N, 2H, 2W, C) (as cv2.pyrUp).

    Zeros go between the pixels and the blur fills them in; its gain of 4
    makes up for the three zeros per pixel, so brightness is kept.
    """
    count, height, width, channels = images.shape
    spread = np.zeros((count, 2 * height, 2 * width, channels), np.float32)
    spread[:, ::2, ::2] = images
    return blur(spread, gain=4.0)


def laplacian_pyramid(images, num_levels):
    """Split (N, S, S, C) images into ``num_levels`` scales, finest first.

    Level k has shape (N, S / 2**k, S / 2**k, C). All levels but the last hold
    what a level adds to the next coarser one (band-pass detail); the last is
    the blurred, downsampled (Gaussian) image itself. Summing the levels back
    up with :func:`pyramid_up` gives the input again.
    """
    gaussian = np.asarray(images, dtype=np.float32)
    levels = []
    for _ in range(num_levels - 1):
        coarser = pyramid_down(gaussian)
        levels.append(gaussian - pyramid_up(coarser))
        gaussian = coarser
    levels.append(gaussian)
    return levels


# -------------------------------------------------------- descriptors ----

def sample_patch_corners(rng, num_images, side, patches_per_image):
    """Random top-left corners of 7x7 patches lying wholly inside the image.

    Returns three int arrays of shape (num_images * patches_per_image,): the
    image index (each image ``patches_per_image`` times), the row and the column.
    """
    positions = side - PATCH_SIZE + 1
    total = num_images * patches_per_image
    image_index = np.repeat(np.arange(num_images), patches_per_image)
    rows = rng.integers(0, positions, size=total)
    cols = rng.integers(0, positions, size=total)
    return image_index, rows, cols


def extract_patches(level, corners):
    """Cut patches out of one level: (N, S, S, C) -> (M, 7, 7, C) float32.

    ``corners`` comes from :func:`sample_patch_corners`; M is its length. The
    reference orders a patch's values channel first, (C, 7, 7); the order
    changes nothing, as the random directions treat all components alike,
    and channels last is the order the gathered values already have in memory.
    """
    windows = np.lib.stride_tricks.sliding_window_view(
        level, (PATCH_SIZE, PATCH_SIZE), axis=(1, 2))  # (N, S-6, S-6, C, 7, 7)
    image_index, rows, cols = corners
    patches = windows[image_index, rows, cols]  # (M, C, 7, 7), stored (M, 7, 7, C)
    return np.moveaxis(patches, 1, -1)


def normalized_descriptors(patches):
    """Flatten (M, 7, 7, C) patches into (M, 49*C) unit-scale descriptors.

    Each channel is shifted and scaled by the mean and standard deviation over
    all M patches and 49 pixels, so that colour and brightness scales do not
    weigh more than the spatial pattern. A constant channel is left at zero.
    """
    count = len(patches)
    values_per_channel = count * PATCH_SIZE * PATCH_SIZE
    mean = channel_sums(patches) / values_per_channel
    centred = patches - mean.astype(np.float32)
    variance = channel_sums(np.square(centred)) / values_per_channel
    std = np.sqrt(variance)
    std[std == 0] = 1.0
    centred /= std.astype(np.float32)
    return centred.reshape(count, -1)


def channel_sums(patches):
    """Per-channel totals of (M, 7, 7, C) float32 patches, as float64 (C,).

    Summing millions of float32 values in one float32 accumulator can lose
    three digits, enough to change the result visibly; so each patch's 49
    values are summed in float32 and the M partial sums in float64.
    """
    return patches.sum(axis=(1, 2)).sum(axis=0, dtype=np.float64)


def patch_descriptors(level, corners):
    """(N, S, S, C) level -> (M, 49*C) normalised descriptors at ``corners``."""
    return normalized_descriptors(extract_patches(level, corners))


# ---------------------------------------------------- sliced distance ----

def random_directions(rng, dimension, count):
    """``count`` random unit vectors in ``dimension``-D, as (dimension, count).

    Normalised Gaussian vectors are uniform on the sphere.
    """
    directions = rng.standard_normal((dimension, count))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    return directions.astype(np.float32)


def sort_rows(array):
    """Sort a 2-D array along its rows, in place; return it."""
    array.sort(axis=1)
    return array


def sliced_wasserstein(descriptors_a, descriptors_b, directions, pool=None):
    """Mean over directions of the 1-D Wasserstein-1 distance of projections.

    ``descriptors_a`` and ``descriptors_b``: (M, D) with the same M;
    ``directions``: (D, K) unit columns. For two equally large samples the 1-D
    Wasserstein-1 distance is the mean absolute difference of the sorted
    values. ``pool`` (a thread pool) sorts the two sets at the same time.
    Returns a Python float (not yet times 1e3).
    """
    total, count = 0.0, directions.shape[1]
    mapper = map if pool is None else pool.map
    for start in range(0, count, DIRECTIONS_PER_CHUNK):
        chunk = directions[:, start:start + DIRECTIONS_PER_CHUNK]
        # (K, M): one row per direction, contiguous, so each sort is a row;
        # BLAS reads the transposed descriptors without copying them.
        projections = (chunk.T @ descriptors_a.T, chunk.T @ descriptors_b.T)
        sorted_a, sorted_b = mapper(sort_rows, projections)
        distances = np.abs(np.subtract(sorted_a, sorted_b, out=sorted_a),
                           out=sorted_a)
        # Rows are summed pairwise in float32 (relative error ~1e-6), their
        # totals in float64; float64 throughout would cost more than the sum.
        total += distances.sum(axis=1).sum(dtype=np.float64)
    return float(total / (count * len(descriptors_a)))


# ------------------------------------------------------------- inputs ----

def images_from_tanh(images, channels_first=False):
    """Map a tanh generator's output in [-1, 1] to uint8 images (N, H, W, C).

    ``images``: a NumPy array (N, H, W, C), or (N, C, H, W) with
    ``channels_first=True`` (MXNet and PyTorch); convert tensors first (e.g.
    ``d2l.numpy(x)``). Values are clipped to [-1, 1] and rounded, so generated
    images are quantised exactly like the uint8 real images they are compared
    with (the reference does the same).
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 4:
        raise ValueError(
            f'expected a batch of images of 4 dimensions, got shape {array.shape}')
    if channels_first:
        array = array.transpose(0, 2, 3, 1)
    scaled = (np.clip(array, -1.0, 1.0) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8)


def check_image_set(images, name):
    """Validate one set and return it as float32 (N, S, S, C).

    uint8 in [0, 255] or floating point in [0, 1] (1e-3 of slack for rounding);
    raises ValueError otherwise, naming the set as ``name``.
    """
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(
            f'{name} must have shape (N, H, W, C) (channels last), '
            f'got shape {array.shape}')
    count, height, width, channels = array.shape
    if channels not in (1, 3):
        raise ValueError(
            f'{name} has {channels} channels in its last axis, expected 3 (RGB) '
            f'or 1: pass channels-last images (N, H, W, C), e.g. '
            f'images_from_tanh(x, channels_first=True), got shape {array.shape}')
    if height != width:
        raise ValueError(f'{name} must be square, got {height}x{width}')
    if height < SMALLEST_LEVEL:
        raise ValueError(
            f'{name} is {height}x{width}: SWD needs images of at least '
            f'{SMALLEST_LEVEL}x{SMALLEST_LEVEL} (its coarsest level)')
    if count < MIN_IMAGES:
        raise ValueError(
            f'{name} has {count} image(s): SWD compares distributions and needs '
            f'at least {MIN_IMAGES} (hundreds for a stable value)')
    if array.dtype == np.uint8:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f'{name} has dtype {array.dtype}: pass uint8 in [0, 255] or floats '
            'in [0, 1]')
    if not np.isfinite(array).all():
        raise ValueError(f'{name} contains NaN or infinite values')
    low, high = float(array.min()), float(array.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f'{name} holds floats in [{low:.3g}, {high:.3g}], expected [0, 1]: '
            'convert a tanh output with images_from_tanh, or pass uint8')
    return array.astype(np.float32)


def check_positive_int(value, name):
    """Raise ValueError unless ``value`` is an int >= 1 (bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')


# ---------------------------------------------------------------- API ----

def sliced_wasserstein_distance(images_a, images_b, *, patches_per_image=128,
                                directions=512, seed=0):
    """SWD between two image sets, per pyramid level and averaged, times 1e3.

    ``images_a``, ``images_b``: (N, S, S, C) channels-last arrays with the same
    shape, C = 3 (or 1), S >= 16; uint8 in [0, 255] or floats in [0, 1] (use
    :func:`images_from_tanh` for a generator's output). ``patches_per_image``
    7x7 patches are taken per image and level; ``directions`` random
    directions are averaged (the reference: 128 patches, 4 x 128 directions).
    The same ``seed`` gives the same value.

    Returns a dict ``{S: swd, S/2: swd, ..., 'mean': average over levels}``,
    e.g. ``{64: 12.1, 32: 8.4, 16: 9.0, 'mean': 9.8}`` for 64x64 images: the
    integer keys are the levels' sides (the last is the low-pass level). Lower
    is better; identical sets give 0. Raises ValueError for invalid input.
    """
    set_a = check_image_set(images_a, 'images_a')
    set_b = check_image_set(images_b, 'images_b')
    if set_a.shape != set_b.shape:
        raise ValueError(
            f'images_a {set_a.shape} and images_b {set_b.shape} must have the '
            'same shape (same number of images, size and channels); slice the '
            'larger set, e.g. images_b[:len(images_a)]')
    check_positive_int(patches_per_image, 'patches_per_image')
    check_positive_int(directions, 'directions')

    count, side = set_a.shape[:2]
    sides = pyramid_resolutions(side)
    level_seeds = np.random.SeedSequence(seed).spawn(len(sides))
    result = {}
    # NumPy releases the GIL in large array operations, so two threads keep
    # two cores busy: one per image set.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pyramid_a, pyramid_b = pool.map(
            lambda images: laplacian_pyramid(images, len(sides)), (set_a, set_b))
        for level_side, level_seed, level_a, level_b in zip(
                sides, level_seeds, pyramid_a, pyramid_b):
            rng = np.random.default_rng(level_seed)
            corners = sample_patch_corners(rng, count, level_side,
                                           patches_per_image)
            descriptors_a, descriptors_b = pool.map(
                patch_descriptors, (level_a, level_b), (corners, corners))
            unit_directions = random_directions(
                rng, descriptors_a.shape[1], directions)
            distance = sliced_wasserstein(descriptors_a, descriptors_b,
                                          unit_directions, pool)
            result[level_side] = distance * REPORT_SCALE
    result['mean'] = float(np.mean(list(result.values())))
    return result


#: How many final epochs a training summary's median covers.
JUDGED_EPOCHS = 5
_SUMMARY = re.compile(r"SWD to (\d+) held-out images, x 1e3 \(lower is better\):\n"
                      r"untrained ([\d.]+) -> trained ([\d.]+) "
                      r"\(median of the last (\d+) epochs?\): ([+-]\d+)%")


def summary(num_held_out, untrained, per_epoch):
    """Two printed lines: the untrained SWD and the median of the last
    ``JUDGED_EPOCHS`` values of ``per_epoch`` (one SWD per trained epoch)."""
    judged = list(per_epoch)[-JUDGED_EPOCHS:]
    trained = statistics.median(judged)
    epochs = "epoch" if len(judged) == 1 else "epochs"
    return (f"SWD to {num_held_out} held-out images, x 1e3 (lower is better):\n"
            f"untrained {untrained:.1f} -> trained {trained:.1f} "
            f"(median of the last {len(judged)} {epochs}): "
            f"{round(100 * (trained / untrained - 1)):+d}%")


def parse_summary(text):
    """The numbers of the last :func:`summary` printed in ``text`` (held_out,
    untrained, trained, epochs, change as a fraction), or None."""
    found = _SUMMARY.findall(text)
    if not found:
        return None
    held_out, untrained, trained, epochs, change = found[-1]
    return {"held_out": int(held_out), "untrained": float(untrained),
            "trained": float(trained), "epochs": int(epochs), "change": int(change) / 100}
