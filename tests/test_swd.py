"""Tests for d2l_shim.swd, the sliced Wasserstein distance (framework-free).

Image sets are drawn here (coloured shapes on white) or read from the embedded
Noto emoji set. Most tests use fewer patches and directions than the defaults
(FAST) so that the file runs in seconds; the properties tested do not depend
on those numbers, only the noise of the estimate does.
"""
import pytest

np = pytest.importorskip("numpy")

from d2l_shim import swd  # noqa: E402  (after the importorskip)

#: 32 patches per image and one chunk of 128 directions: ~8x cheaper than the
#: reference's settings, still a few thousand patches per level.
FAST = dict(patches_per_image=32, directions=128)

#: Identical pixels given once as uint8 and once as floats in [0, 1] differ by
#: float32 rounding only. Descriptors are O(1) float32 values (ulp ~1e-7), and
#: each step (pyramid, normalisation, projection on a unit direction) adds a
#: few ulps, so sorted projections differ by ~1e-6: 1e-3 in the reported unit
#: (x 1e3). Measured: ~4e-4. 1e-2 leaves room for other BLAS kernels and is
#: still 3 orders of magnitude below the smallest real difference tested here
#: (faint noise, ~40).
REPRESENTATION_EPSILON = 1e-2


# ------------------------------------------------------------ helpers ----

def random_shapes(count, seed, radius=(6, 16), shapes_per_image=(1, 4), size=64):
    """(count, size, size, 3) uint8: filled discs and squares of random colours
    on white, like sprites. ``radius`` and ``shapes_per_image`` are [low, high)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    images = np.full((count, size, size, 3), 255, np.uint8)
    for image in images:
        for _ in range(rng.integers(*shapes_per_image)):
            centre_row, centre_col = rng.uniform(0, size, 2)
            r = rng.uniform(*radius)
            if rng.random() < 0.5:
                inside = (rows - centre_row) ** 2 + (cols - centre_col) ** 2 < r * r
            else:
                inside = (abs(rows - centre_row) < r) & (abs(cols - centre_col) < r)
            image[inside] = rng.integers(0, 256, 3)
    return images


def with_noise(images, sigma, seed=0):
    """uint8 images plus Gaussian noise of standard deviation ``sigma``."""
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images + noise, 0, 255).round().astype(np.uint8)


def box_blurred(images, width=3):
    """uint8 images averaged over ``width`` x ``width`` neighbourhoods.

    Written independently of swd.blur, so the test does not check the module
    against itself.
    """
    pad = width // 2
    padded = np.pad(images.astype(np.float64),
                    ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    height, breadth = images.shape[1:3]
    total = sum(padded[:, i:i + height, j:j + breadth]
                for i in range(width) for j in range(width))
    return np.round(total / width ** 2).astype(np.uint8)


def swd_mean(images_a, images_b, **options):
    """The level-averaged SWD with the FAST settings (unless overridden)."""
    options = {**FAST, **options}
    return swd.sliced_wasserstein_distance(images_a, images_b, **options)["mean"]


@pytest.fixture(scope="module")
def shapes():
    return random_shapes(128, seed=1)


@pytest.fixture(scope="module")
def emoji(tmp_path_factory):
    """The embedded Noto emoji set, (1377, 64, 64, 3) uint8, in a private cache."""
    from d2l_shim import hub, images
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("D2L_DATA_DIR", str(tmp_path_factory.mktemp("d2l_data")))
        return images.read_image_folder(hub.download_extract("noto_emoji_64"))


# --------------------------------------------------------- properties ----

def test_result_names_every_level_and_the_mean(shapes):
    result = swd.sliced_wasserstein_distance(shapes[:8], shapes[8:16], **FAST)
    assert list(result) == [64, 32, 16, "mean"]
    assert all(isinstance(value, float) for value in result.values())
    levels = [result[64], result[32], result[16]]
    assert result["mean"] == pytest.approx(np.mean(levels))


def test_identical_sets_give_exactly_zero(shapes):
    # Both sets share patch positions and directions, so their descriptors are
    # bitwise equal and every sorted difference is exactly 0.
    result = swd.sliced_wasserstein_distance(shapes[:32], shapes[:32].copy(), **FAST)
    assert all(value == 0.0 for value in result.values())


def test_uint8_and_unit_float_inputs_are_the_same_images(shapes):
    few = shapes[:32]
    for as_float in (few / np.float32(255), few / 255.0):
        result = swd.sliced_wasserstein_distance(few, as_float, **FAST)
        assert max(result.values()) < REPRESENTATION_EPSILON


def test_noise_raises_the_distance_monotonically(shapes):
    # Shared patch positions make the noise's effect stable even on few images.
    few = shapes[:48]
    values = [swd_mean(few, with_noise(few, sigma)) for sigma in (4, 16, 48)]
    assert REPRESENTATION_EPSILON * 100 < values[0] < values[1] < values[2]


def test_noise_shows_most_at_the_finest_level(shapes):
    few = shapes[:48]
    result = swd.sliced_wasserstein_distance(few, with_noise(few, 16), **FAST)
    assert result[64] > result[32] > result[16]


def test_blur_raises_the_distance_mostly_at_the_finest_level(shapes):
    few = shapes[:48]
    result = swd.sliced_wasserstein_distance(few, box_blurred(few), **FAST)
    assert result["mean"] > REPRESENTATION_EPSILON * 100
    assert result[64] > 2 * result[16]
    assert swd_mean(few, box_blurred(few, width=5)) > result["mean"]


def test_same_distribution_is_closer_than_a_different_one(shapes):
    same = swd_mean(shapes, random_shapes(128, seed=2))
    # Many small shapes instead of a few large ones: measured ratios over four
    # data sets were 0.19-0.28.
    small_shapes = random_shapes(128, seed=3, radius=(2, 4), shapes_per_image=(8, 24))
    different = swd_mean(shapes, small_shapes)
    assert 0 < same < 0.5 * different


def test_a_seed_gives_the_same_value_every_time(shapes):
    few, other = shapes[:48], random_shapes(48, seed=2)
    first = swd.sliced_wasserstein_distance(few, other, seed=7, **FAST)
    again = swd.sliced_wasserstein_distance(few, other, seed=7, **FAST)
    assert first == again
    changed = swd.sliced_wasserstein_distance(few, other, seed=8, **FAST)
    assert changed != first
    # A different seed is another estimate of the same distance (measured:
    # within 20% at these small settings).
    assert changed["mean"] == pytest.approx(first["mean"], rel=0.5)


def test_single_channel_images_work(shapes):
    grey = shapes[:32, :, :, :1]
    assert swd_mean(grey, grey) == 0.0
    assert swd_mean(grey, with_noise(grey, 16)) > 1.0


def test_larger_images_get_more_levels():
    big = random_shapes(4, seed=5, size=128)
    result = swd.sliced_wasserstein_distance(big, with_noise(big, 8), **FAST)
    assert list(result) == [128, 64, 32, 16, "mean"]


def test_blank_images_have_a_finite_distance(shapes):
    # A channel constant over a whole set has no deviation to divide by.
    blank = np.full((16, 64, 64, 3), 255, np.uint8)
    assert swd_mean(blank, blank) == 0.0
    assert 0 < swd_mean(blank, shapes[:16]) < np.inf


def test_directions_need_not_fill_a_chunk(shapes):
    value = swd_mean(shapes[:8], shapes[8:16], directions=130)
    assert 0 < value < np.inf


def test_default_settings_run(shapes):
    result = swd.sliced_wasserstein_distance(shapes[:8], shapes[8:16])
    assert result["mean"] > 0


# ------------------------------------------------------- the emoji set ----

@pytest.fixture(scope="module")
def emoji_distances(emoji):
    """SWD results of 128 emoji against other sets, each computed once.

    Even- and odd-numbered emoji are two samples of one distribution (the
    files are sorted by code point, so similar emoji sit next to each other).
    """
    evens, odds = emoji[0:256:2], emoji[1:256:2]
    uniform = np.random.default_rng(0).integers(0, 256, evens.shape, dtype=np.uint8)
    others = {"same distribution": odds, "blurred": box_blurred(evens),
              "uniform noise": uniform}
    others.update({f"noise {sigma}": with_noise(evens, sigma) for sigma in (8, 24, 64)})
    return {name: swd.sliced_wasserstein_distance(evens, images, **FAST)
            for name, images in others.items()}


def test_emoji_noise_raises_the_distance_monotonically(emoji_distances):
    values = [emoji_distances[f"noise {sigma}"]["mean"] for sigma in (8, 24, 64)]
    assert 0 < values[0] < values[1] < values[2]


def test_emoji_samples_are_far_closer_than_random_pixels(emoji_distances):
    same = emoji_distances["same distribution"]["mean"]
    random_pixels = emoji_distances["uniform noise"]["mean"]
    assert 0 < same < emoji_distances["noise 24"]["mean"]
    assert 4 * same < random_pixels
    assert emoji_distances["noise 64"]["mean"] < random_pixels


def test_emoji_blur_shows_at_the_finest_level(emoji_distances):
    # At 128 images the coarse levels of two samples differ by their content
    # (which emoji were drawn); the fine level sees the lost detail instead.
    blurred = emoji_distances["blurred"]
    assert blurred[64] > 1.3 * emoji_distances["same distribution"][64]
    assert blurred[64] > 5 * blurred[16]


# ------------------------------------------------ pyramid and helpers ----

def test_pyramid_levels_and_exact_reconstruction(shapes):
    levels = swd.laplacian_pyramid(shapes[:4], 3)
    assert [level.shape for level in levels] == [
        (4, 64, 64, 3), (4, 32, 32, 3), (4, 16, 16, 3)]
    rebuilt = levels[-1]
    for detail in levels[-2::-1]:
        rebuilt = swd.pyramid_up(rebuilt) + detail
    np.testing.assert_allclose(rebuilt, shapes[:4], atol=1e-3)


def test_pyramid_keeps_a_constant_image_constant():
    flat = np.full((1, 32, 32, 3), 100.0, np.float32)
    low = swd.pyramid_down(flat)
    np.testing.assert_allclose(low, 100.0, rtol=1e-6)
    np.testing.assert_allclose(swd.pyramid_up(low), 100.0, rtol=1e-6)


def test_blur_mirrors_the_edge_without_repeating_it():
    # A corner impulse spreads by the binomial weights 6, 4, 1 (/16) in each
    # direction. Padding that repeated the edge pixel (SciPy's 'reflect', not
    # the reference's 'mirror') would add the mirrored weights at the corner.
    impulse = np.zeros((1, 8, 8, 1), np.float32)
    impulse[0, 0, 0, 0] = 1
    weights = np.array([6, 4, 1]) / 16
    blurred = swd.blur(impulse)[0, :, :, 0]
    np.testing.assert_allclose(blurred[:3, :3], np.outer(weights, weights), rtol=1e-6)
    assert blurred[3:].max() == 0 and blurred[:, 3:].max() == 0


def test_sliced_wasserstein_of_a_shifted_set_is_the_mean_projected_shift():
    # Shifting every descriptor by v shifts each projection by v . d, so the
    # sorted values differ by exactly |v . d| on direction d.
    rng = np.random.default_rng(0)
    descriptors = rng.standard_normal((500, 147)).astype(np.float32)
    shift = rng.standard_normal(147).astype(np.float32)
    directions = swd.random_directions(rng, 147, 200)
    expected = np.abs(shift @ directions).mean()
    got = swd.sliced_wasserstein(descriptors, descriptors + shift, directions)
    assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("size, sides", [
    (16, [16]), (24, [24]), (64, [64, 32, 16]), (128, [128, 64, 32, 16]),
    (48, [48, 24]), (50, [50, 25])])
def test_pyramid_resolutions(size, sides):
    assert swd.pyramid_resolutions(size) == sides


def test_images_from_tanh():
    # Channel c of every pixel holds -1, 0 and 1: black, mid-grey, white.
    nchw = np.array([-1.0, 0.0, 1.0], np.float32).reshape(1, 3, 1, 1) \
        * np.ones((1, 3, 2, 5), np.float32)
    converted = swd.images_from_tanh(nchw, channels_first=True)
    assert converted.shape == (1, 2, 5, 3) and converted.dtype == np.uint8
    assert converted[0, 1, 4].tolist() == [0, 128, 255]
    out_of_range = np.array([-3.0, 5.0]).reshape(1, 1, 2, 1)
    assert swd.images_from_tanh(out_of_range).ravel().tolist() == [0, 255]
    with pytest.raises(ValueError, match="4 dimensions"):
        swd.images_from_tanh(np.zeros((2, 2, 3)))


# --------------------------------------------------- input validation ----

GOOD = np.zeros((4, 16, 16, 3), np.uint8)


@pytest.mark.parametrize("images_b, message", [
    (np.zeros((4, 16, 16), np.uint8), r"shape \(N, H, W, C\)"),
    (np.zeros((4, 3, 16, 16), np.uint8), "channels-last"),
    (np.zeros((4, 16, 16, 4), np.uint8), "4 channels"),
    (np.zeros((4, 8, 8, 3), np.uint8), "at least 16x16"),
    (np.zeros((4, 16, 32, 3), np.uint8), "square"),
    (np.zeros((1, 16, 16, 3), np.uint8), "at least 2"),
    (np.zeros((5, 16, 16, 3), np.uint8), "same shape"),
    (np.zeros((4, 32, 32, 3), np.uint8), "same shape"),
    (np.zeros((4, 16, 16, 1), np.uint8), "same shape"),
    (np.zeros((4, 16, 16, 3), np.int32), "uint8 in"),
    (np.full((4, 16, 16, 3), 255.0), r"expected \[0, 1\]"),
    (np.full((4, 16, 16, 3), -0.5), "images_from_tanh"),
    (np.full((4, 16, 16, 3), np.nan), "NaN"),
])
def test_invalid_images_are_refused(images_b, message):
    with pytest.raises(ValueError, match=message):
        swd.sliced_wasserstein_distance(GOOD, images_b)


def test_the_first_set_is_checked_too():
    with pytest.raises(ValueError, match="images_a"):
        swd.sliced_wasserstein_distance(np.zeros((4, 8, 8, 3), np.uint8), GOOD)


@pytest.mark.parametrize("option", [
    dict(patches_per_image=0), dict(directions=0), dict(directions=1.5),
    dict(patches_per_image=True)])
def test_invalid_options_are_refused(option):
    with pytest.raises(ValueError, match="positive integer"):
        swd.sliced_wasserstein_distance(GOOD, GOOD, **option)
