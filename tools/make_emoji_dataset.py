#!/usr/bin/env python3
"""Rebuild ``d2l_shim/datasets/noto_emoji_64.zip`` from the Noto Color Emoji font.

The DCGAN chapter trains on a Pokemon sprite archive that cannot be downloaded
here. This script makes a small stand-in with the same layout: a zip whose single
top folder holds one sub-folder per class and one small RGB PNG per image::

    noto_emoji_64/                  top folder, named like the archive
        1F300-1F5FF/                one class per Unicode block
            1F300.png               one 64x64 RGB image per code point
            ...

That is the ``root/class/image.png`` layout read by torchvision's
``ImageFolder``, MXNet's ``ImageFolderDataset`` and Keras'
``image_dataset_from_directory``.

Every image is the colour bitmap of one single-code-point emoji, drawn with
Pillow, composited onto white (like the sprites), centred in a fixed square so
that all emoji keep their relative size, and shrunk with a Lanczos filter.

The archive is byte-for-byte reproducible for a given font file, Pillow and
fontTools: members are sorted and carry fixed timestamps and permissions.

Usage (Debian package ``fonts-noto-color-emoji`` installed)::

    python tools/make_emoji_dataset.py --out d2l_shim/datasets/noto_emoji_64.zip
"""

import argparse
import collections
import io
import os
import sys
import time
import zipfile

from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

# Run as a script, so the repository root (d2l_shim, standard library only) is added.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d2l_shim import files

DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
DEFAULT_OUT = os.path.join(os.path.dirname(files.__file__), "datasets", "noto_emoji_64.zip")

# Noto Color Emoji ships a single bitmap strike at 109 ppem. Asking FreeType for
# exactly that size returns the bitmaps unscaled, so no resampling happens
# before our own, well-defined Lanczos resize.
STRIKE_PPEM = 109

# Side of the square every glyph is centred in before resizing, in strike
# pixels. A fixed frame (rather than a tight crop per glyph) keeps a small
# square emoji small and a face large, as sprites keep their relative size.
# Most glyphs are 116-124 px across and none exceeds 128 (the strike's em), so
# 144 leaves a white margin of about 5 px at 64x64, like the margin around a
# sprite, and nothing touches the border.
FRAME_SIDE = 144

# A glyph whose opaque pixels cover less than this share of the frame is
# treated as "nearly blank". The smallest real emoji (U+25AA, black small
# square) covers about 5%, so 0.5% only catches empty or dot-sized renderings.
MIN_INK_FRACTION = 0.005

# Fixed zip metadata: the earliest date a zip can hold, and ordinary Unix
# permissions, so the archive does not depend on when or where it was built.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_UNIX_SYSTEM = 3
FILE_MODE = 0o100644
DIR_MODE = 0o040755
MSDOS_DIRECTORY_FLAG = 0x10

# Code points that Unicode lists as Emoji_Component (emoji-data.txt): they are
# only meaningful inside a sequence. The font still draws them, but as a grey
# digit, a blue letter, a skin-colour swatch or hair in a dashed box, none of
# which is a picture a generator should learn.
EMOJI_COMPONENT_RANGES = [
    (0x0023, 0x0023, "keycap base"),              # '#'
    (0x002A, 0x002A, "keycap base"),              # '*'
    (0x0030, 0x0039, "keycap base"),              # digits 0-9
    (0x200D, 0x200D, "joiner or selector"),       # zero width joiner
    (0x20E3, 0x20E3, "keycap base"),              # combining enclosing keycap
    (0xFE0F, 0xFE0F, "joiner or selector"),       # emoji presentation selector
    (0x1F1E6, 0x1F1FF, "regional indicator"),     # flag letters A-Z
    (0x1F3FB, 0x1F3FF, "skin-tone modifier"),
    (0x1F9B0, 0x1F9B3, "hair component"),
    (0xE0020, 0xE007F, "tag"),                    # subdivision-flag tags
]

# Google's private-use glyphs (U+FE4E5.., U+FE82C..) are not Unicode emoji:
# they are legacy carrier codes that duplicate ten country flags and eleven
# keycaps, which Unicode spells as sequences (left out like all sequences).
PRIVATE_USE_RANGES = [(0xE000, 0xF8FF), (0xF0000, 0x10FFFF)]

# The Unicode blocks (Blocks.txt) that hold this font's single-code-point
# emoji; each becomes one class folder named by its code point range.
UNICODE_BLOCKS = [
    (0x0080, 0x00FF, "Latin-1 Supplement"),
    (0x2000, 0x206F, "General Punctuation"),
    (0x2100, 0x214F, "Letterlike Symbols"),
    (0x2190, 0x21FF, "Arrows"),
    (0x2300, 0x23FF, "Miscellaneous Technical"),
    (0x2460, 0x24FF, "Enclosed Alphanumerics"),
    (0x25A0, 0x25FF, "Geometric Shapes"),
    (0x2600, 0x26FF, "Miscellaneous Symbols"),
    (0x2700, 0x27BF, "Dingbats"),
    (0x2900, 0x297F, "Supplemental Arrows-B"),
    (0x2B00, 0x2BFF, "Miscellaneous Symbols and Arrows"),
    (0x3000, 0x303F, "CJK Symbols and Punctuation"),
    (0x3200, 0x32FF, "Enclosed CJK Letters and Months"),
    (0x1F000, 0x1F02F, "Mahjong Tiles"),
    (0x1F0A0, 0x1F0FF, "Playing Cards"),
    (0x1F100, 0x1F1FF, "Enclosed Alphanumeric Supplement"),
    (0x1F200, 0x1F2FF, "Enclosed Ideographic Supplement"),
    (0x1F300, 0x1F5FF, "Miscellaneous Symbols and Pictographs"),
    (0x1F600, 0x1F64F, "Emoticons"),
    (0x1F680, 0x1F6FF, "Transport and Map Symbols"),
    (0x1F780, 0x1F7FF, "Geometric Shapes Extended"),
    (0x1F900, 0x1F9FF, "Supplemental Symbols and Pictographs"),
    (0x1FA70, 0x1FAFF, "Symbols and Pictographs Extended-A"),
]


def parse_args(argv):
    """Parse the command line into an ``argparse.Namespace``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="zip to write (default: %(default)s)")
    parser.add_argument("--font", default=DEFAULT_FONT,
                        help="NotoColorEmoji.ttf (default: %(default)s)")
    parser.add_argument("--size", type=int, default=64,
                        help="side of the square output images in pixels")
    parser.add_argument("--limit", type=int, default=None,
                        help="keep at most this many images (for quick tries)")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be positive")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be positive")
    return args


def colour_glyph_code_points(font_path):
    """Map every code point in the font's cmap to whether it has a colour bitmap.

    Returns a dict {code point: bool}. Noto Color Emoji keeps its pictures in
    the CBDT/CBLC tables; a cmap entry whose glyph has no CBLC bitmap (space,
    NULL, tags) draws nothing in colour.
    """
    font = TTFont(font_path, lazy=True)
    glyphs_with_bitmaps = set()
    for strike in font["CBLC"].strikes:
        for index_subtable in strike.indexSubTables:
            glyphs_with_bitmaps.update(index_subtable.names)
    cmap = font.getBestCmap()
    return {code_point: glyph_name in glyphs_with_bitmaps
            for code_point, glyph_name in cmap.items()}


def font_version(font_path):
    """Return the font's version string from its name table (name ID 5)."""
    return TTFont(font_path, lazy=True)["name"].getDebugName(5)


def static_skip_reason(code_point, has_colour_bitmap):
    """Say why a code point is left out before drawing it, or None to keep it."""
    # The named kinds come first so that the report says *what* was dropped
    # (tags and the joiner have no bitmap either).
    for first, last in PRIVATE_USE_RANGES:
        if first <= code_point <= last:
            return "private use (not a Unicode emoji)"
    for first, last, kind in EMOJI_COMPONENT_RANGES:
        if first <= code_point <= last:
            return "emoji component: " + kind
    if not has_colour_bitmap:
        return "no colour bitmap"
    return None


def block_folder(code_point):
    """Name the class folder of a code point by its Unicode block, e.g. '1F300-1F5FF'."""
    for first, last, _name in UNICODE_BLOCKS:
        if first <= code_point <= last:
            return f"{first:04X}-{last:04X}"
    raise ValueError(f"U+{code_point:04X} is in no block of UNICODE_BLOCKS; "
                     "add its block (from Unicode's Blocks.txt) to the table")


def render_glyph_rgba(font, code_point):
    """Draw one emoji on a transparent canvas and crop to its opaque pixels.

    Returns an RGBA image of shape (h, w, 4), h and w at most about 136 at the
    109 ppem strike, or None when nothing opaque was drawn.
    """
    # The bitmap is 136x128 at most; a margin of a whole frame on every side
    # keeps a glyph that overhangs its advance from being cut off.
    canvas = Image.new("RGBA", (3 * FRAME_SIDE, 3 * FRAME_SIDE), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FRAME_SIDE, FRAME_SIDE), chr(code_point),
                                font=font, embedded_color=True)
    ink_box = canvas.getchannel("A").getbbox()
    return None if ink_box is None else canvas.crop(ink_box)


def ink_fraction(glyph_rgba, frame_side):
    """Share of a frame_side x frame_side square covered by any opaque pixel.

    glyph_rgba: RGBA image of shape (h, w, 4). Returns a float in [0, 1].
    """
    alpha_histogram = glyph_rgba.getchannel("A").histogram()
    opaque_pixels = sum(alpha_histogram[1:])
    return opaque_pixels / float(frame_side * frame_side)


def centre_on_white(glyph_rgba, frame_side):
    """Composite a glyph onto a white square, centred.

    glyph_rgba: RGBA image of shape (h, w, 4). Returns an RGB image of shape
    (s, s, 3) with s = max(frame_side, h, w), so an oversized glyph is never
    clipped, only shrunk a little more.
    """
    width, height = glyph_rgba.size
    side = max(frame_side, width, height)
    white = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    # Compositing before resizing: a Lanczos filter on straight (not
    # premultiplied) RGBA would bleed the black of transparent pixels into
    # the edges as dark fringes.
    white.alpha_composite(glyph_rgba, ((side - width) // 2, (side - height) // 2))
    return white.convert("RGB")


def to_png_bytes(image_rgb, size):
    """Resize an RGB image of shape (s, s, 3) to (size, size, 3) and encode as PNG."""
    thumbnail = image_rgb.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # Pillow writes no time or software chunks, so equal pixels give equal bytes.
    thumbnail.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def build_members(font_path, size, limit):
    """Render every usable emoji.

    Returns (members, skipped): members maps an archive path such as
    'noto_emoji_64/1F600-1F64F/1F600.png' to PNG bytes of a (size, size, 3)
    image; skipped is a Counter {reason: number of code points}.
    """
    top_folder = f"noto_emoji_{size}"
    font = ImageFont.truetype(font_path, STRIKE_PPEM)
    members = {}
    skipped = collections.Counter()
    for code_point, has_bitmap in sorted(colour_glyph_code_points(font_path).items()):
        if limit is not None and len(members) >= limit:
            break
        reason = static_skip_reason(code_point, has_bitmap)
        glyph = None if reason else render_glyph_rgba(font, code_point)
        if reason is None and (glyph is None
                               or ink_fraction(glyph, FRAME_SIDE) < MIN_INK_FRACTION):
            reason = "renders empty or nearly blank"
        if reason:
            skipped[reason] += 1
            continue
        path = f"{top_folder}/{block_folder(code_point)}/{code_point:04X}.png"
        members[path] = to_png_bytes(centre_on_white(glyph, FRAME_SIDE), size)
    return members, skipped


def zip_info(name, mode):
    """A ZipInfo with fixed date, creator system and Unix permissions."""
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = ZIP_UNIX_SYSTEM
    info.external_attr = mode << 16
    if name.endswith("/"):
        info.external_attr |= MSDOS_DIRECTORY_FLAG
    # PNG data is already deflated; storing it costs almost nothing in size.
    info.compress_type = zipfile.ZIP_STORED
    return info


def with_parent_folders(member_paths):
    """Add an entry 'a/' and 'a/b/' for every folder of 'a/b/c.png'; return them sorted."""
    entries = set(member_paths)
    for path in member_paths:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            entries.add("/".join(parts[:depth]) + "/")
    return sorted(entries)


def write_reproducible_zip(members, out_path):
    """Write {archive path: bytes} to out_path so equal input gives equal bytes."""
    def write(stream):
        with zipfile.ZipFile(stream, "w") as archive:
            for name in with_parent_folders(members):
                if name.endswith("/"):
                    archive.writestr(zip_info(name, DIR_MODE), b"")
                else:
                    archive.writestr(zip_info(name, FILE_MODE), members[name])
    files.write_atomically(out_path, write)


def folder_counts(member_paths):
    """Count images per class folder: {'1F300-1F5FF': n, ...}, sorted by folder."""
    counts = collections.Counter(path.split("/")[1] for path in member_paths)
    return dict(sorted(counts.items()))


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    members, skipped = build_members(args.font, args.size, args.limit)
    if not members:
        sys.exit("no emoji rendered; is this a colour (CBDT) emoji font?")
    write_reproducible_zip(members, args.out)
    elapsed = time.perf_counter() - started

    print(f"font:     {args.font} ({font_version(args.font)})")
    for folder, count in folder_counts(members).items():
        print(f"  {folder:<12} {count:5d} images")
    print(f"skipped:  {sum(skipped.values())} code points")
    for reason, count in sorted(skipped.items()):
        print(f"  {count:5d}  {reason}")
    print(f"images:   {len(members)} ({args.size}x{args.size} RGB PNG)")
    print(f"archive:  {args.out}")
    print(f"size:     {os.path.getsize(args.out)} bytes")
    print(f"sha1:     {files.sha1_of_file(args.out)}")
    print(f"time:     {elapsed:.1f} s")


if __name__ == "__main__":
    main()
