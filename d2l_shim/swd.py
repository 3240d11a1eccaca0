"""Sliced Wasserstein distance (SWD) between two image sets, in NumPy only.

A sample-quality number that needs no downloaded network (unlike FID), so it runs
offline in every environment. It follows Karras et al. (2018), "Progressive Growing
of GANs", appendix D, and their reference code: 7x7 patches cut from every level of
a Laplacian pyramid, normalised per set, projected onto random directions; the 1-D
Wasserstein distances are averaged, times 1e3. Unlike the reference, both sets share
the patch positions and directions, so identical sets give exactly 0. Like any
estimate from samples it shrinks as the sets grow: compare values at equal N only.
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
    """Sides of the pyramid levels of ``size`` x ``size`` images: 64 -> [64, 32, 16]."""
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
    """Cut patches out of one level at ``corners``: (N, S, S, C) -> (M, 7, 7, C).

    Channels last, not the reference's (C, 7, 7): random directions treat all
    components alike, and this is the order the values already have in memory.
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
    """Per-channel totals of (M, 7, 7, C) float32 patches, as float64 (C,): one
    float32 accumulator over millions of values would lose three digits."""
    return patches.sum(axis=(1, 2)).sum(axis=0, dtype=np.float64)


def patch_descriptors(level, corners):
    """(N, S, S, C) level -> (M, 49*C) normalised descriptors at ``corners``."""
    return normalized_descriptors(extract_patches(level, corners))


# ---------------------------------------------------- sliced distance ----

def random_directions(rng, dimension, count):
    """``count`` random unit vectors (normalised Gaussians) as (dimension, count)."""
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
