"""Tests for d2l_shim.images: decoding, transparency on white, the .npz cache.

Every image is generated here, a few pixels wide.
"""
import os
import stat

import numpy as np
import pytest
from PIL import Image

from d2l_shim import images
from d2l_shim.images import ImageReadError, read_image_folder

WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def rgba_sprite(size=8):
    """A red square on a fully transparent background (stored as black)."""
    sprite = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    for x in range(2, 6):
        for y in range(2, 6):
            sprite.putpixel((x, y), RED + (255,))
    return sprite


def palette_sprite(size=8):
    """A palette image: index 0 (black) is transparent, index 1 is blue."""
    sprite = Image.new("P", (size, size), 0)
    sprite.putpalette([0, 0, 0, *BLUE] + [0, 0, 0] * 254)
    for x in range(2, 6):
        sprite.putpixel((x, 3), 1)
    sprite.info["transparency"] = 0
    return sprite


def solid(colour, size=8):
    return Image.new("RGB", (size, size), colour)


def write(folder, relative, image, **save_options):
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save_options)
    return path


@pytest.fixture
def decode_calls(monkeypatch):
    """Counts the files actually decoded (cache misses)."""
    calls = []
    real = images.decode_image

    def counting(path, size):
        calls.append(os.path.basename(path))
        return real(path, size)

    monkeypatch.setattr(images, "decode_image", counting)
    return calls


# ------------------------------------------------------- transparency ----

def test_rgba_sprite_transparent_background_becomes_white(tmp_path):
    write(tmp_path / "set", "sprite.png", rgba_sprite())
    (pixels,) = read_image_folder(tmp_path / "set", size=8)
    assert pixels.dtype == np.uint8 and pixels.shape == (8, 8, 3)
    assert tuple(pixels[0, 0]) == WHITE, "not black: alpha was honoured"
    assert tuple(pixels[3, 3]) == RED
    assert (pixels[:2] == 255).all() and (pixels[6:] == 255).all()


def test_half_transparent_pixel_is_blended_with_white(tmp_path):
    image = Image.new("RGBA", (4, 4), RED + (128,))
    write(tmp_path / "set", "half.png", image)
    (pixels,) = read_image_folder(tmp_path / "set", size=4)
    red, green, blue = (int(v) for v in pixels[0, 0])
    assert red == 255 and 125 <= green <= 129 and 125 <= blue <= 129


def test_palette_png_with_transparency_on_white(tmp_path):
    path = write(tmp_path / "set", "palette.png", palette_sprite(),
                 transparency=0)
    with Image.open(path) as check:  # the file really is a transparent palette
        assert check.mode == "P" and "transparency" in check.info
    (pixels,) = read_image_folder(tmp_path / "set", size=8)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[3, 2]) == BLUE


def test_palette_gif_with_transparency_on_white(tmp_path):
    write(tmp_path / "set", "palette.gif", palette_sprite(), transparency=0)
    (pixels,) = read_image_folder(tmp_path / "set", size=8)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[3, 2]) == BLUE


def test_grey_with_alpha_on_white(tmp_path):
    image = Image.new("LA", (4, 4), (0, 0))  # black, fully transparent
    image.putpixel((1, 1), (0, 255))  # one opaque black pixel
    write(tmp_path / "set", "la.png", image)
    (pixels,) = read_image_folder(tmp_path / "set", size=4)
    assert tuple(pixels[0, 0]) == WHITE
    assert tuple(pixels[1, 1]) == (0, 0, 0)


def test_opaque_rgb_is_unchanged_and_resized(tmp_path):
    write(tmp_path / "set", "red.png", solid(RED, size=16))
    (pixels,) = read_image_folder(tmp_path / "set", size=8)
    assert pixels.shape == (8, 8, 3)
    assert (pixels == np.array(RED, dtype=np.uint8)).all()


# ---------------------------------------------------------- bad files ----

def test_file_that_is_not_an_image_is_named(tmp_path):
    write(tmp_path / "set", "good.png", solid(RED))
    broken = tmp_path / "set" / "class" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a PNG at all")
    with pytest.raises(ImageReadError, match="broken.png") as excinfo:
        read_image_folder(tmp_path / "set", size=8)
    assert str(broken) in str(excinfo.value)
    assert not os.path.exists(images.cache_path(tmp_path / "set", 8)), (
        "no cache is written for a folder that failed")


def test_truncated_png_is_named(tmp_path):
    path = write(tmp_path / "set", "cut.png", solid(BLUE, size=32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image_folder(tmp_path / "set", size=8)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="no image files"):
        read_image_folder(tmp_path / "set")


# -------------------------------------------------------------- cache ----

def make_folder(tmp_path, colours):
    folder = tmp_path / "set"
    for index, colour in enumerate(colours):
        write(folder, f"c{index % 2}/{index:03d}.png", solid(colour))
    return folder


def test_cache_is_reused_without_decoding(tmp_path, decode_calls):
    folder = make_folder(tmp_path, [RED, BLUE, RED])
    first = read_image_folder(folder, size=8)
    assert len(decode_calls) == 3
    second = read_image_folder(folder, size=8)
    assert len(decode_calls) == 3, "second call read the cache"
    np.testing.assert_array_equal(first, second)
    assert os.path.exists(images.cache_path(folder, 8))


def test_cache_is_per_size(tmp_path, decode_calls):
    folder = make_folder(tmp_path, [RED])
    assert read_image_folder(folder, size=8).shape == (1, 8, 8, 3)
    assert read_image_folder(folder, size=4).shape == (1, 4, 4, 3)
    assert len(decode_calls) == 2


def test_cache_file_is_world_readable(tmp_path):
    folder = make_folder(tmp_path, [RED])
    read_image_folder(folder, size=8)
    mode = stat.S_IMODE(os.stat(images.cache_path(folder, 8)).st_mode)
    assert mode == 0o644
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_changed_file_invalidates_cache(tmp_path, decode_calls):
    folder = make_folder(tmp_path, [RED, RED])
    read_image_folder(folder, size=8)
    changed = folder / "c1" / "001.png"
    before = os.stat(changed)
    solid(BLUE).save(changed)
    # Same name and (for PNGs of one colour) about the same size: the
    # modification time must tell; make sure it moved even on coarse clocks.
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    result = read_image_folder(folder, size=8)
    assert tuple(result[1, 0, 0]) == BLUE
    assert len(decode_calls) == 4


def test_added_and_removed_files_invalidate_cache(tmp_path):
    folder = make_folder(tmp_path, [RED, RED])
    assert len(read_image_folder(folder, size=8)) == 2
    write(folder, "c0/new.png", solid(BLUE))
    assert len(read_image_folder(folder, size=8)) == 3
    (folder / "c0" / "000.png").unlink()
    assert len(read_image_folder(folder, size=8)) == 2


def test_unreadable_or_old_cache_is_rebuilt(tmp_path, decode_calls):
    folder = make_folder(tmp_path, [RED])
    cache = images.cache_path(folder, 8)
    with open(cache, "wb") as f:
        f.write(b"garbage")
    assert tuple(read_image_folder(folder, size=8)[0, 0, 0]) == RED
    stamp = images.fingerprint(folder, images.list_images(folder))
    np.savez(cache, images=np.zeros((1, 8, 8, 3), np.uint8),
             files=np.array(stamp), version=np.array(images.CACHE_VERSION - 1))
    assert tuple(read_image_folder(folder, size=8)[0, 0, 0]) == RED
    assert len(decode_calls) == 2


# -------------------------------------------------------------- limit ----

def test_limit_spreads_over_the_sorted_files(tmp_path):
    shades = [(value, value, value) for value in range(0, 250, 25)]  # 10
    folder = tmp_path / "set"
    for index, shade in enumerate(shades):
        write(folder, f"{index:02d}.png", solid(shade))
    picked = read_image_folder(folder, size=4, limit=4)[:, 0, 0, 0]
    assert picked.tolist() == [0, 75, 150, 225]  # indices 0, 3, 6, 9
    assert len(read_image_folder(folder, size=4, limit=100)) == 10
    assert len(read_image_folder(folder, size=4, limit=None)) == 10


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_bad_limit_is_a_clear_error(tmp_path, bad):
    folder = make_folder(tmp_path, [RED])
    with pytest.raises(ValueError, match="limit must be"):
        read_image_folder(folder, size=8, limit=bad)


def test_hold_out_takes_every_nth_image_and_limits_the_rest():
    from d2l_shim.images import hold_out
    images = np.arange(25)
    training, held = hold_out(images, every=10)
    assert held.tolist() == [0, 10, 20]
    assert sorted(training.tolist() + held.tolist()) == list(range(25))
    limited, held_again = hold_out(images, every=10, limit=4)
    assert len(limited) == 4 and set(limited) <= set(training) and held_again.tolist() == [0, 10, 20]
    with pytest.raises(ValueError, match="every"):
        hold_out(images, every=1)
