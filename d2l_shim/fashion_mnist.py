"""Fashion-MNIST as NumPy arrays, framework-free.

The four archives are registered in ``hub.DATA_HUB`` (``fashion_mnist_train_images``,
``fashion_mnist_train_labels``, ``fashion_mnist_test_images``,
``fashion_mnist_test_labels``) with Zalando's URLs and their sha1s, so they are
downloaded, verified and cached like every other data set (mirrors, manual
placement and error messages included).  They are kept in
``<data_root()>/fashion_mnist/``: MNIST's files have the same names.

The files are in the IDX format of MNIST, gzipped: a 4-byte magic number (two
zero bytes, a type code, the number of dimensions), one big-endian uint32 per
dimension, then the values in C order.  :func:`read_idx` reads any such file;
:func:`load_fashion_mnist_arrays` returns a split as uint8 arrays, which each
framework module turns into its own data loader (``load_data_fashion_mnist``).
"""
import gzip
import os
import struct
import zlib

import numpy as np
from PIL import Image

from . import hub

SPLITS = ("train", "test")

#: Label i is the kind of article ``TEXT_LABELS[i]`` (d2l's names).
TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")

IMAGE_SHAPE = (28, 28)
CACHE_SUBFOLDER = "fashion_mnist"

# IDX type codes; the values are stored big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4",
               0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


class IdxFormatError(ValueError):
    """A file that is not a complete IDX file; the message names it."""


def read_idx(path):
    """Read an IDX file (gzipped or not) into a NumPy array.

    Returns an array of the stored shape in native byte order; the
    Fashion-MNIST files give uint8 images (N, 28, 28) and uint8 labels (N,).
    Raises :class:`IdxFormatError` for a bad magic number, an unknown type
    code, or a file (or gzip stream) that is cut short or too long.
    """
    data = _read_bytes(path)
    dtype, shape = _parse_header(data, path)
    offset = 4 + 4 * len(shape)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - offset
    if found != expected:
        problem = "truncated" if found < expected else "longer than its header says"
        raise IdxFormatError(
            f"IDX file {path} is {problem}: shape {shape} needs {expected} "
            f"bytes of data after the header, found {found}. Delete it and "
            "download it again.")
    values = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable native copy


def _read_bytes(path):
    """The file's content, decompressed if it is gzipped."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise IdxFormatError(
            f"{path} is a damaged gzip file ({err}); it was probably cut "
            "short. Delete it and download it again.") from err


def _parse_header(data, path):
    """(big-endian dtype, shape) from an IDX header; checks the magic number."""
    if len(data) < 4:
        raise IdxFormatError(f"IDX file {path} is truncated: {len(data)} "
                             "bytes, shorter than the 4-byte magic number")
    zeros, type_code, ndim = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        magic = struct.unpack(">I", data[:4])[0]
        raise IdxFormatError(
            f"{path} is not an IDX file: bad magic number 0x{magic:08X} "
            "(expected 0x0000TTDD: two zero bytes, a type code TT such as 08 "
            "for unsigned bytes, and the number of dimensions DD)")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise IdxFormatError(f"IDX file {path} is truncated inside its "
                             f"header ({ndim} dimensions announced)")
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    return np.dtype(_IDX_DTYPES[type_code]), shape


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def _check_pair(images, labels, images_path, labels_path):
    """Images (N, 28, 28) uint8 and N labels below 10, or a clear error."""
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise IdxFormatError(f"{images_path} holds {images.dtype} data of shape "
                             f"{images.shape}, not uint8 images (N, 28, 28)")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IdxFormatError(f"{labels_path} holds {labels.dtype} data of shape "
                             f"{labels.shape}, not uint8 labels (N,)")
    if len(images) != len(labels):
        raise IdxFormatError(f"{images_path} has {len(images)} images but "
                             f"{labels_path} has {len(labels)} labels")
    if labels.size and labels.max() >= len(TEXT_LABELS):
        raise IdxFormatError(f"{labels_path} has label {labels.max()}; "
                             f"Fashion-MNIST labels are 0 to {len(TEXT_LABELS) - 1}")


def resize_images(images, size):
    """Resize uint8 images (N, H, W) to ``size`` (an int, or (height, width)).

    Bilinear with antialiasing (Pillow), as torchvision's ``Resize`` does on
    PIL images; the result stays uint8 so that 60,000 images at 64 x 64 take
    245 MB instead of a GB as float32.
    """
    height, width = (size, size) if np.isscalar(size) else size
    if (height, width) == images.shape[1:]:
        return images
    out = np.empty((len(images), height, width), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((width, height),
                                                          Image.BILINEAR))
    return out


def load_fashion_mnist_arrays(split="train", resize=None):
    """One split of Fashion-MNIST as (images, labels) uint8 NumPy arrays.

    ``images`` is (N, 28, 28) (or resized, see :func:`resize_images`),
    ``labels`` is (N,) with values 0-9 (see ``TEXT_LABELS``); N is 60,000
    for ``"train"`` and 10,000 for ``"test"``.  The archives come through
    the data hub (downloaded once, sha1-checked, cached).
    """
    _check_split(split)
    folder = os.path.join(hub.data_root(), CACHE_SUBFOLDER)
    images_path = hub.download(f"fashion_mnist_{split}_images", folder)
    labels_path = hub.download(f"fashion_mnist_{split}_labels", folder)
    images, labels = read_idx(images_path), read_idx(labels_path)
    _check_pair(images, labels, images_path, labels_path)
    if resize is not None:
        images = resize_images(images, resize)
    return images, labels


def get_fashion_mnist_labels(labels):
    """The text labels of numeric labels (any iterable of ints), as in d2l."""
    return [TEXT_LABELS[int(i)] for i in labels]
