"""Tests for d2l_shim.fashion_mnist: the IDX reader and loading through the hub.

Nothing is downloaded from the internet: the tests write small IDX archives in
the format of the real ones and serve them through file:// URLs or an HTTP
server on 127.0.0.1 (random free port, stopped at the end).
"""
import functools
import gzip
import hashlib
import http.server
import struct
import threading

import numpy as np
import pytest

from d2l_shim import api, fashion_mnist, hub
from d2l_shim.fashion_mnist import (
    IdxFormatError,
    get_fashion_mnist_labels,
    load_fashion_mnist_arrays,
    read_idx,
)

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def idx_bytes(array, type_code=0x08):
    """``array`` in the IDX format: magic, big-endian dimensions, values."""
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, type_code, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + big_endian.tobytes()


def write_idx(path, array, type_code=0x08, compress=True):
    data = idx_bytes(array, type_code)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def sample_split(count, seed):
    """``count`` random 28x28 uint8 images and labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


@pytest.fixture
def archives(tmp_path):
    """A small Fashion-MNIST in the real files' format: 12 train, 5 test."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    splits = {"train": sample_split(12, seed=0), "test": sample_split(5, seed=1)}
    for split, (images, labels) in splits.items():
        write_idx(folder / FILE_NAMES[f"{split}_images"], images)
        write_idx(folder / FILE_NAMES[f"{split}_labels"], labels)
    return folder, splits


def register(monkeypatch, base_url, folder):
    """Point the four hub entries at ``base_url`` with the files' sha1s."""
    for key, file_name in FILE_NAMES.items():
        digest = hashlib.sha1((folder / file_name).read_bytes()).hexdigest()
        monkeypatch.setitem(hub.DATA_HUB, f"fashion_mnist_{key}",
                            (f"{base_url}/{file_name}", digest))


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("D2L_DATA_DIR", str(cache))
    monkeypatch.delenv("D2L_DATA_MIRRORS", raising=False)
    return cache


@pytest.fixture
def local_server(tmp_path):
    """Serve a folder on 127.0.0.1; yields (base URL, folder, requests)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever,
                              kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder, requests
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


# ------------------------------------------------------------ read_idx ----

def test_read_idx_images_and_labels(tmp_path):
    images, labels = sample_split(3, seed=2)
    got_images = read_idx(write_idx(tmp_path / "i.gz", images))
    got_labels = read_idx(write_idx(tmp_path / "l.gz", labels))
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 28, 28)
    assert got_labels.dtype == np.uint8 and got_labels.shape == (3,)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    got_images[0, 0, 0] = 7  # a writable copy, not a view of the file


def test_read_idx_uncompressed_file(tmp_path):
    images, _ = sample_split(2, seed=3)
    path = write_idx(tmp_path / "images-idx3-ubyte", images, compress=False)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([[1, -2, 70000], [3, 4, -5]], dtype=np.int32)
    got = read_idx(write_idx(tmp_path / "ints.gz", values, type_code=0x0C))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_bad_magic_number_is_named(tmp_path):
    path = tmp_path / "little-endian.gz"
    # A header written little-endian: 2051 = 0x00000803 read backwards.
    path.write_bytes(gzip.compress(struct.pack("<I", 2051) + bytes(16)))
    with pytest.raises(IdxFormatError,
                       match=r"not an IDX file: bad magic number 0x03080000"):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "odd.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9])))
    with pytest.raises(IdxFormatError, match="bad magic number 0x00000701"):
        read_idx(path)


def test_truncated_data_names_file_and_sizes(tmp_path):
    images, _ = sample_split(2, seed=4)
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(images)[:-100]))
    with pytest.raises(IdxFormatError) as excinfo:
        read_idx(path)
    message = str(excinfo.value)
    assert str(path) in message and "is truncated" in message
    assert f"needs {2 * 28 * 28} bytes" in message
    assert f"found {2 * 28 * 28 - 100}" in message


def test_trailing_data_is_refused(tmp_path):
    _, labels = sample_split(4, seed=5)
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels) + b"extra"))
    with pytest.raises(IdxFormatError, match="longer than its header says"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    images, _ = sample_split(5, seed=6)
    compressed = gzip.compress(idx_bytes(images))
    path = tmp_path / "half.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IdxFormatError, match=r"half\.gz is a damaged gzip"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"", b"\x00\x00", bytes([0, 0, 8, 3, 0, 0])])
def test_truncated_header(tmp_path, content):
    path = tmp_path / "stub"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError, match="truncated"):
        read_idx(path)


# -------------------------------------------------- loading via the hub ----

def test_real_archives_are_registered():
    """The URLs Zalando lists, with the sha1s MXNet Gluon checks."""
    base = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert {name: hub.DATA_HUB[name] for name in hub.DATA_HUB
            if name.startswith("fashion_mnist")} == {
        "fashion_mnist_train_images": (base + "train-images-idx3-ubyte.gz",
                                       "0cf37b0d40ed5169c6b3aba31069a9770ac9043d"),
        "fashion_mnist_train_labels": (base + "train-labels-idx1-ubyte.gz",
                                       "236021d52f1e40852b06a4c3008d8de8aef1e40b"),
        "fashion_mnist_test_images": (base + "t10k-images-idx3-ubyte.gz",
                                      "626ed6a7c06dd17c0eec72fa3be1740f146a2863"),
        "fashion_mnist_test_labels": (base + "t10k-labels-idx1-ubyte.gz",
                                      "17f9ab60e7257a1620f4ad76bbbaf857c3920701"),
    }


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_through_file_urls(archives, monkeypatch, isolated_cache, split):
    folder, splits = archives
    register(monkeypatch, folder.as_uri(), folder)
    images, labels = load_fashion_mnist_arrays(split)
    np.testing.assert_array_equal(images, splits[split][0])
    np.testing.assert_array_equal(labels, splits[split][1])
    cached = sorted(p.name for p in (isolated_cache / "fashion_mnist").iterdir()
                    if not p.name.endswith(".lock"))
    assert cached == sorted([FILE_NAMES[f"{split}_images"],
                             FILE_NAMES[f"{split}_labels"]])


def test_load_through_local_http_server(archives, local_server, monkeypatch):
    folder, splits = archives
    base_url, served, requests = local_server
    for file_name in FILE_NAMES.values():
        (served / file_name).write_bytes((folder / file_name).read_bytes())
    register(monkeypatch, base_url, folder)

    images, labels = load_fashion_mnist_arrays("test")
    np.testing.assert_array_equal(images, splits["test"][0])
    np.testing.assert_array_equal(labels, splits["test"][1])
    assert sorted(requests) == ["/t10k-images-idx3-ubyte.gz",
                                "/t10k-labels-idx1-ubyte.gz"]
    load_fashion_mnist_arrays("test")
    assert len(requests) == 2, "the second load reads the cache"


def test_resize(archives, monkeypatch):
    folder, splits = archives
    register(monkeypatch, folder.as_uri(), folder)
    images, labels = load_fashion_mnist_arrays("test", resize=64)
    assert images.shape == (5, 64, 64) and images.dtype == np.uint8
    assert len(labels) == 5
    flat = np.full((1, 28, 28), 200, np.uint8)
    assert (fashion_mnist.resize_images(flat, (32, 40)) == 200).all()
    assert fashion_mnist.resize_images(flat, (32, 40)).shape == (1, 32, 40)


def test_mismatched_counts_are_an_error(archives, monkeypatch):
    folder, _ = archives
    write_idx(folder / FILE_NAMES["test_labels"], np.zeros(4, np.uint8))
    register(monkeypatch, folder.as_uri(), folder)
    with pytest.raises(IdxFormatError, match="has 5 images but .* has 4 labels"):
        load_fashion_mnist_arrays("test")


def test_unknown_split():
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_fashion_mnist_arrays("validation")


def test_text_labels():
    assert get_fashion_mnist_labels(np.array([0, 9, 5])) == [
        "t-shirt", "ankle boot", "sandal"]


# ----------------------------------------------- per-framework loaders ----

@pytest.mark.skipif("load_data_fashion_mnist" not in api.PER_FRAMEWORK,
                    reason="load_data_fashion_mnist is not in d2l_shim.api yet")
@pytest.mark.parametrize("resize", [None, 32])
def test_load_data_fashion_mnist(d2l, framework, archives, monkeypatch, resize):
    folder, splits = archives
    register(monkeypatch, folder.as_uri(), folder)
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=4,
                                                        resize=resize)
    side = resize or 28
    channels_last = framework in ("tensorflow", "jax")
    batches = [(d2l.numpy(X), d2l.numpy(y)) for X, y in test_iter]
    assert [len(y) for _, y in batches] == [4, 1]
    X, y = batches[0]
    assert X.dtype == np.float32
    assert X.shape == ((4, side, side, 1) if channels_last else (4, 1, side, side))
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert np.issubdtype(y.dtype, np.integer)
    # The test set keeps its order; with no resize the pixels are exact.
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]),
                                  splits["test"][1])
    if resize is None:
        first = X[..., 0] if channels_last else X[:, 0]
        np.testing.assert_allclose(first * 255, splits["test"][0][:4], atol=1e-3)
    train_labels = np.concatenate([d2l.numpy(y) for _, y in train_iter])
    assert sorted(train_labels) == sorted(splits["train"][1])
