"""Tests for d2l_shim.hub: downloads, caching, verification, extraction.

Only file:// URLs and HTTP servers started here on 127.0.0.1 (random free
port, stopped at the end of each test) are used; no other address is ever
contacted.  ``FaultyHandler`` injects one fault per URL prefix; each fault
has a test that checks the outcome and that nothing corrupt is left in the
cache.
"""

import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

from d2l_shim import datasets_registry, hub
from d2l_shim.files import sha1_of_file
from d2l_shim.hub import (
    DownloadError,
    UnsafeArchiveError,
    data_root,
    download,
    download_extract,
    extract,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
REGISTERED = dict(hub.DATA_HUB)  # as imported, before the fixtures empty it
PAYLOAD = b'pixels of a tiny data set\n' * 100
BACKOFF = 0.05  # seconds: short, yet long enough to measure that retries wait


def sha1_of(data):
    return hashlib.sha1(data).hexdigest()


def causes(err):
    """``err`` and the exceptions behind it, as far as Python records them."""
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__ or next(
            (arg for arg in err.args if isinstance(arg, BaseException)), None)


# ------------------------------------------------------------- fixtures ----

@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Each test gets its own cache, no mirrors and no real hub entries."""
    cache = tmp_path / 'cache'
    monkeypatch.setenv('D2L_DATA_DIR', str(cache))
    monkeypatch.delenv('D2L_DATA_MIRRORS', raising=False)
    monkeypatch.delenv('D2L_DOWNLOAD_TIMEOUT', raising=False)
    monkeypatch.setattr(hub, 'DATA_HUB', {})
    return cache


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch):
    """Retries back off by a factor of ``BACKOFF`` seconds instead of one."""
    monkeypatch.setattr(hub, 'RETRY_BACKOFF_SECONDS', BACKOFF)


@pytest.fixture
def cache(isolated_environment):
    return isolated_environment


class QuietRecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder and records every requested path."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


class FaultyHandler(QuietRecordingHandler):
    """Answers ``/<fault>/<file>`` with the file from the server's folder,
    after the fault; ``ok`` is no fault.  ``seen`` counts the earlier
    requests for the same path, for faults that pass."""

    def do_GET(self):
        seen = self.server.record(self.path)
        fault, _, name = self.path.lstrip('/').partition('/')
        answer = getattr(self, f'answer_{fault}', None)
        if answer is None or not (self.directory_path / name).is_file():
            self.send_error(404)
            return
        answer(name, seen)

    @property
    def directory_path(self):
        return Path(self.directory)

    def send_file(self, name, declared_length=None, chunk_pause=0.0):
        data = (self.directory_path / name).read_bytes()
        self.send_response(200)
        self.send_header('Content-Length',
                         str(declared_length or len(data)))
        self.end_headers()
        chunk = max(1, len(data) // 8)
        for start in range(0, len(data), chunk):
            self.wfile.write(data[start:start + chunk])
            self.wfile.flush()
            time.sleep(chunk_pause)

    def answer_ok(self, name, seen):
        self.send_file(name)

    def answer_flaky500(self, name, seen):
        if seen == 0:
            self.send_error(500)
        else:
            self.send_file(name)

    def answer_always500(self, name, seen):
        self.send_error(503)

    def answer_reset(self, name, seen):
        if seen == 0:
            # SO_LINGER 0: closing sends a TCP reset instead of a clean FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
            self.connection.close()
            self.close_connection = True
        else:
            self.send_file(name)

    def answer_redirect(self, name, seen):
        self.send_response(302)
        self.send_header('Location', f'/ok/{name}')
        self.send_header('Content-Length', '0')
        self.end_headers()

    def answer_loop(self, name, seen):
        self.send_response(302)
        self.send_header('Location', self.path)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def answer_stall(self, name, seen):
        data = (self.directory_path / name).read_bytes()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.server.release.wait(10)  # far longer than the client waits

    def answer_truncate(self, name, seen):
        data = (self.directory_path / name).read_bytes()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data) * 2))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def answer_truncateonce(self, name, seen):
        if seen == 0:
            self.answer_truncate(name, seen)
        else:
            self.send_file(name)

    def answer_gzipped(self, name, seen):
        """A .gz sent with Content-Encoding: gzip, as some static hosts do."""
        data = (self.directory_path / name).read_bytes()
        self.send_response(200)
        self.send_header('Content-Encoding', 'gzip')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer_hold(self, name, seen):
        """Wait for the test's go (server.release), then send slowly."""
        self.server.release.wait(20)
        self.send_file(name, chunk_pause=0.02)

    def answer_together(self, name, seen):
        """Wait until two clients asked, then send to both at once."""
        self.server.both_asked.wait(timeout=20)
        self.send_file(name, chunk_pause=0.02)


class RecordingServer(http.server.ThreadingHTTPServer):
    """Counts requests per path; keeps handler errors instead of printing
    them (a client that gave up makes the handler's writes fail)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests = []
        self.errors = []
        self.release = threading.Event()
        self.both_asked = threading.Barrier(2)
        self._counts = {}
        self._lock = threading.Lock()

    def record(self, path):
        with self._lock:
            self.requests.append(path)
            seen = self._counts.get(path, 0)
            self._counts[path] = seen + 1
        return seen

    def handle_error(self, request, client_address):
        self.errors.append(sys.exc_info()[1])


class LocalServer:
    """An HTTP server on 127.0.0.1 with a random free port, in a thread."""

    def __init__(self, directory, handler=QuietRecordingHandler):
        handler = functools.partial(handler, directory=str(directory))
        self.httpd = RecordingServer(('127.0.0.1', 0), handler)
        self.directory = Path(directory)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.release.set()  # let stalled handlers finish
        self.httpd.both_asked.abort()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def start(name='site', handler=QuietRecordingHandler):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        server = LocalServer(folder, handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def faulty(make_server):
    """A FaultyHandler server whose folder holds ``data.bin`` = PAYLOAD."""
    server = make_server('faulty', FaultyHandler)
    (server.directory / 'data.bin').write_bytes(PAYLOAD)
    return server


@pytest.fixture
def refused_url():
    """A URL on a port that is bound but not listening: connect is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    yield f'http://127.0.0.1:{port}/data/archive.bin'
    sock.close()


def leftover_files(folder):
    """Every file under ``folder``, temporary files included; the empty lock
    files stay by design (an OS lock on them dies with its holder)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*')
                  if not p.name.endswith('.lock'))


@contextlib.contextmanager
def silent_url(name='slow.bin'):
    """A URL whose server accepts connections but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen(8)
        yield f'http://127.0.0.1:{silent.getsockname()[1]}/{name}'


def write_zip(path, members):
    """members: {archive name: bytes}."""
    with zipfile.ZipFile(path, 'w') as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tar_gz(path, members):
    with tarfile.open(path, 'w:gz') as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------ data_root ----

def test_data_root_from_env_is_created(cache):
    assert not cache.exists()
    assert data_root() == str(cache)
    assert cache.is_dir()


def test_data_root_default_is_in_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv('D2L_DATA_DIR')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path)
    expected = tmp_path / 'home' / '.cache' / 'd2l_shim'
    assert data_root() == str(expected)
    assert expected.is_dir()


def test_sha1_matches_hashlib(tmp_path):
    path = tmp_path / 'big.bin'
    data = os.urandom(3 * 1024 * 1024 + 17)  # spans several chunks
    path.write_bytes(data)
    assert sha1_of_file(path) == sha1_of(data)


# ------------------------------------------------------------- download ----

def test_file_url_download_and_cache_hit(tmp_path, cache):
    source = tmp_path / 'shipped' / 'tiny.bin'
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    url = source.as_uri()

    path = download(url, sha1_hash=sha1_of(PAYLOAD))
    assert path == str(cache / 'tiny.bin')
    assert Path(path).read_bytes() == PAYLOAD

    source.unlink()  # a cache hit must not need the source any more
    assert download(url, sha1_hash=sha1_of(PAYLOAD)) == path
    assert leftover_files(cache) == ['tiny.bin']


def test_http_download_then_cache_hit_without_request(server, cache):
    (server.directory / 'data.bin').write_bytes(PAYLOAD)
    url = f'{server.url}/data.bin'

    path = download(url, sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert server.requests == ['/data.bin']

    assert download(url, sha1_hash=sha1_of(PAYLOAD)) == path
    assert server.requests == ['/data.bin'], 'cache hit must not refetch'
    assert leftover_files(cache) == ['data.bin']


def test_hub_name_uses_registered_url_and_hash(server, cache, monkeypatch):
    (server.directory / 'emoji.zip').write_bytes(PAYLOAD)
    monkeypatch.setitem(hub.DATA_HUB, 'emoji',
                        (f'{server.url}/emoji.zip', sha1_of(PAYLOAD)))
    path = download('emoji')
    assert path == str(cache / 'emoji.zip')
    assert Path(path).read_bytes() == PAYLOAD


def test_explicit_folder(server, tmp_path):
    (server.directory / 'data.bin').write_bytes(PAYLOAD)
    target = tmp_path / 'elsewhere'
    path = download(f'{server.url}/data.bin', str(target))
    assert path == str(target / 'data.bin')


def test_registry_entries_are_in_the_hub():
    assert datasets_registry.DATA_SETS.items() <= REGISTERED.items()
    assert {'noto_emoji_64', 'fashion_mnist_train_images'} <= REGISTERED.keys()


def test_embedded_data_set_comes_through_the_hub_offline(refused_url, cache,
                                                         monkeypatch):
    url, digest = datasets_registry.DATA_SETS['noto_emoji_64']
    assert url.startswith('file://')
    monkeypatch.setitem(hub.DATA_HUB, 'noto_emoji_64', (url, digest))
    # Mirrors stand in for remote files only: this one would refuse.
    monkeypatch.setenv('D2L_DATA_MIRRORS', refused_url.rsplit('/', 2)[0])
    path = download('noto_emoji_64')
    assert path == str(cache / 'noto_emoji_64.zip') and sha1_of_file(path) == digest


def test_missing_file_url_is_reported(tmp_path, cache):
    url = (tmp_path / 'nowhere.bin').as_uri()
    with pytest.raises(DownloadError) as excinfo:
        download(url)
    assert f'{url}: no such file or directory' in str(excinfo.value)
    assert leftover_files(cache) == []


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match='neither a URL nor a data set'):
        download('no-such-data-set')


def test_wrong_sha1_raises_and_leaves_nothing(server, cache, monkeypatch):
    (server.directory / 'data.bin').write_bytes(PAYLOAD)
    url = f'{server.url}/data.bin'
    wrong = '0' * 40
    monkeypatch.setitem(hub.DATA_HUB, 'tiny', (url, wrong))

    with pytest.raises(DownloadError) as excinfo:
        download('tiny')
    message = str(excinfo.value)
    assert "'tiny'" in message
    assert url in message
    assert wrong in message
    assert sha1_of(PAYLOAD) in message
    assert f"place it by hand at '{cache / 'data.bin'}'" in message
    assert isinstance(excinfo.value, OSError)
    assert server.requests == ['/data.bin'], 'a wrong body is not retried'
    assert leftover_files(cache) == []


def test_http_404_raises_and_leaves_nothing(server, cache):
    url = f'{server.url}/missing.zip'
    with pytest.raises(DownloadError, match='HTTP error 404') as excinfo:
        download(url, sha1_hash='1' * 40)
    assert f'{url}: HTTP error 404 File not found' in str(excinfo.value)
    assert server.requests == ['/missing.zip'], '4xx is not retried'
    assert leftover_files(cache) == []


def test_corrupted_cache_is_downloaded_again(server, cache):
    (server.directory / 'data.bin').write_bytes(PAYLOAD)
    url = f'{server.url}/data.bin'
    cache.mkdir(parents=True)
    (cache / 'data.bin').write_bytes(b'truncated')

    path = download(url, sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert server.requests == ['/data.bin']
    assert leftover_files(cache) == ['data.bin']


def test_connection_refused_explains_what_to_do(refused_url, cache, monkeypatch):
    monkeypatch.setitem(hub.DATA_HUB, 'archive',
                        (refused_url, '2' * 40))
    with pytest.raises(DownloadError) as excinfo:
        download('archive')
    message = str(excinfo.value)
    # What could not be fetched ...
    assert message.startswith("Could not download data set 'archive' "
                              "(file 'archive.bin'); nothing was saved.")
    assert f'{refused_url}: connection refused' in message
    # ... where to put it by hand, with the hash it must have ...
    assert f"place it by hand at '{cache / 'archive.bin'}'" in message
    assert 'its sha1 must be ' + '2' * 40 in message
    # ... and which variable points to a mirror.
    assert 'set the environment variable D2L_DATA_MIRRORS' in message
    assert '\n' not in message, 'the explanation is one paragraph'
    for internal in ('Traceback', 'HTTPConnectionPool', 'Max retries', 'object at 0x'):
        assert internal not in message
    assert any(isinstance(e, ConnectionRefusedError) for e in causes(excinfo.value))
    assert leftover_files(cache) == []


LONG_BACKOFF = 30.0  # a retry would wait at least this long


def test_connection_refused_is_not_retried(refused_url, cache, monkeypatch):
    monkeypatch.setattr(hub, 'RETRY_BACKOFF_SECONDS', LONG_BACKOFF)
    started = time.monotonic()
    with pytest.raises(DownloadError, match='connection refused'):
        download(refused_url)
    assert time.monotonic() - started < LONG_BACKOFF / 2, 'no retry, no wait'


def test_timeout_before_any_answer_is_reported_not_retried(cache, monkeypatch):
    monkeypatch.setattr(hub, 'RETRY_BACKOFF_SECONDS', LONG_BACKOFF)
    with silent_url() as url:
        started = time.monotonic()
        with pytest.raises(DownloadError) as excinfo:
            download(url, timeout=0.3)
        elapsed = time.monotonic() - started
    assert f'{url}: no answer within 0.3 s (timed out)' in str(excinfo.value)
    assert 0.3 <= elapsed < LONG_BACKOFF / 2, 'asked once, not three times'
    assert leftover_files(cache) == []


def test_timeout_from_environment(cache, monkeypatch):
    with silent_url() as url:
        monkeypatch.setenv('D2L_DOWNLOAD_TIMEOUT', '0.2')
        with pytest.raises(DownloadError, match=r'no answer within 0\.2 s'):
            download(url)
        monkeypatch.setenv('D2L_DOWNLOAD_TIMEOUT', 'soon')
        with pytest.raises(ValueError, match="D2L_DOWNLOAD_TIMEOUT .* got 'soon'"):
            download(url)
        # An explicit timeout wins; the variable is then not read at all.
        with pytest.raises(DownloadError, match=r'no answer within 0\.1 s'):
            download(url, timeout=0.1)


def test_mirror_is_tried_before_original(make_server, cache, monkeypatch):
    original = make_server('original')
    mirror = make_server('mirror')
    for site in (original, mirror):
        (site.directory / 'data.bin').write_bytes(PAYLOAD)
    monkeypatch.setenv('D2L_DATA_MIRRORS', f'{mirror.url}/')

    path = download(f'{original.url}/deep/path/data.bin',
                    sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert mirror.requests == ['/data.bin']
    assert original.requests == []


def test_mirrors_in_order_then_original(make_server, refused_url, cache,
                                        monkeypatch):
    empty_mirror = make_server('empty')
    good_mirror = make_server('good')
    (good_mirror.directory / 'archive.bin').write_bytes(PAYLOAD)
    monkeypatch.setenv('D2L_DATA_MIRRORS',
                       f'{empty_mirror.url}, {good_mirror.url}')

    path = download(refused_url, sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert empty_mirror.requests == ['/archive.bin']
    assert good_mirror.requests == ['/archive.bin']


def test_original_used_when_mirror_fails(make_server, refused_url, cache,
                                         monkeypatch):
    original = make_server('original')
    (original.directory / 'data.bin').write_bytes(PAYLOAD)
    mirror_base = refused_url.rsplit('/', 2)[0]
    monkeypatch.setenv('D2L_DATA_MIRRORS', mirror_base)
    path = download(f'{original.url}/data.bin', sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert original.requests == ['/data.bin']


def test_all_sources_failing_lists_each(make_server, refused_url, cache,
                                        monkeypatch):
    empty_mirror = make_server('empty')
    monkeypatch.setenv('D2L_DATA_MIRRORS', empty_mirror.url)
    with pytest.raises(DownloadError) as excinfo:
        download(refused_url)
    message = str(excinfo.value)
    assert f'{empty_mirror.url}/archive.bin: HTTP error 404' in message
    assert f'{refused_url}: connection refused' in message
    assert leftover_files(cache) == []


def test_small_download_prints_nothing(server, cache, capfd, monkeypatch):
    monkeypatch.delenv('CI', raising=False)
    (server.directory / 'data.bin').write_bytes(PAYLOAD)
    download(f'{server.url}/data.bin')
    captured = capfd.readouterr()
    assert captured.out == '' and captured.err == ''


def test_gzip_content_encoding_keeps_the_file_bytes(faulty, cache):
    """A .gz served as Content-Encoding: gzip is saved as served, not unpacked."""
    packed = gzip.compress(PAYLOAD)
    (faulty.directory / 'data.bin.gz').write_bytes(packed)
    path = download(f'{faulty.url}/gzipped/data.bin.gz', sha1_hash=sha1_of(packed))
    assert Path(path).read_bytes() == packed


# --------------------------------------------------- one test per fault ----

def test_fault_none_200(faulty, cache):
    path = download(f'{faulty.url}/ok/data.bin', sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert faulty.requests == ['/ok/data.bin']
    assert leftover_files(cache) == ['data.bin']


def test_fault_500_then_200_is_retried(faulty, cache):
    path = download(f'{faulty.url}/flaky500/data.bin',
                    sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert faulty.requests == ['/flaky500/data.bin'] * 2
    assert leftover_files(cache) == ['data.bin']


def test_fault_5xx_every_time_gives_up_after_bounded_retries(faulty, cache):
    url = f'{faulty.url}/always500/data.bin'
    started = time.monotonic()
    with pytest.raises(DownloadError) as excinfo:
        download(url, sha1_hash=sha1_of(PAYLOAD))
    assert f'{url}: HTTP error 503 Service Unavailable' in str(excinfo.value)
    assert len(faulty.requests) == hub.RETRY_ATTEMPTS == 3
    # urllib3 retries at once, then waits twice the backoff factor.
    assert time.monotonic() - started >= 2 * BACKOFF, 'the retries back off'
    assert leftover_files(cache) == []


def test_fault_connection_reset_is_retried(faulty, cache):
    path = download(f'{faulty.url}/reset/data.bin',
                    sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD
    assert faulty.requests == ['/reset/data.bin'] * 2
    assert leftover_files(cache) == ['data.bin']


def test_fault_redirect_is_followed_and_keeps_the_asked_name(faulty, cache):
    faulty.directory.joinpath('renamed.bin').write_bytes(PAYLOAD)
    path = download(f'{faulty.url}/redirect/data.bin',
                    sha1_hash=sha1_of(PAYLOAD))
    assert path == str(cache / 'data.bin')
    assert Path(path).read_bytes() == PAYLOAD
    assert faulty.requests == ['/redirect/data.bin', '/ok/data.bin']
    assert leftover_files(cache) == ['data.bin']


def test_fault_redirect_loop_fails_cleanly(faulty, cache):
    url = f'{faulty.url}/loop/data.bin'
    with pytest.raises(DownloadError, match='Exceeded 30 redirects') as excinfo:
        download(url)
    assert url in str(excinfo.value)
    assert len(faulty.requests) == 31, 'followed a bounded number of times'
    assert leftover_files(cache) == []


def test_fault_stall_longer_than_timeout(faulty, cache):
    url = f'{faulty.url}/stall/data.bin'
    started = time.monotonic()
    with pytest.raises(DownloadError) as excinfo:
        download(url, sha1_hash=sha1_of(PAYLOAD), timeout=0.3)
    assert time.monotonic() - started < 5
    assert f'{url}: no answer within 0.3 s (timed out)' in str(excinfo.value)
    assert faulty.requests == ['/stall/data.bin'], 'a timeout is not retried'
    assert leftover_files(cache) == [], 'the half body must not stay'


def test_fault_truncated_body_every_time(faulty, cache):
    url = f'{faulty.url}/truncate/data.bin'
    with pytest.raises(DownloadError) as excinfo:
        download(url)  # no sha1: the declared length alone must catch it
    assert (f'{url}: IncompleteRead({len(PAYLOAD)} bytes read, {len(PAYLOAD)} '
            f'more expected)') in str(excinfo.value)
    assert len(faulty.requests) == hub.RETRY_ATTEMPTS
    assert leftover_files(cache) == []


def test_fault_truncated_body_once_then_complete(faulty, cache):
    path = download(f'{faulty.url}/truncateonce/data.bin')
    assert Path(path).read_bytes() == PAYLOAD, 'the retry starts afresh'
    assert len(faulty.requests) == 2
    assert leftover_files(cache) == ['data.bin']


def test_fault_wrong_hash_body(faulty, cache, monkeypatch):
    url = f'{faulty.url}/ok/data.bin'
    expected = sha1_of(b'the real data set')
    monkeypatch.setitem(hub.DATA_HUB, 'tiny', (url, expected))
    with pytest.raises(DownloadError) as excinfo:
        download('tiny')
    message = str(excinfo.value)
    assert (f"Tried: {url}: sha1 mismatch: expected {expected}, got "
            f"{sha1_of(PAYLOAD)}.") in message
    assert ("If you trust the new content, register its sha1 in "
            "DATA_HUB['tiny']") in message
    assert faulty.requests == ['/ok/data.bin']
    assert leftover_files(cache) == []


def test_fault_404(faulty, cache):
    url = f'{faulty.url}/ok/missing.bin'
    with pytest.raises(DownloadError, match='HTTP error 404'):
        download(url)
    assert faulty.requests == ['/ok/missing.bin']
    assert leftover_files(cache) == []


def test_fault_zip_slip_archive_over_http(faulty, cache, tmp_path,
                                          monkeypatch):
    archive = write_zip(faulty.directory / 'evil.zip', {
        'evil/ok.txt': b'fine',
        'evil/../../escaped.txt': b'outside',
    })
    monkeypatch.setitem(hub.DATA_HUB, 'evil',
                        (f'{faulty.url}/ok/evil.zip', sha1_of_file(archive)))
    with pytest.raises(UnsafeArchiveError, match=r'evil/\.\./\.\./escaped'):
        download_extract('evil')
    assert not (cache.parent / 'escaped.txt').exists()
    assert not (tmp_path / 'escaped.txt').exists()
    # The archive is the registered, verified one; nothing was unpacked.
    assert leftover_files(cache) == ['evil.zip']


def test_cached_wrong_hash_downloaded_again_once_then_error(
        server, cache, monkeypatch):
    expected = sha1_of(b'the real data set')
    url = f'{server.url}/data.bin'
    (server.directory / 'data.bin').write_bytes(PAYLOAD)  # wrong upstream
    monkeypatch.setitem(hub.DATA_HUB, 'tiny', (url, expected))
    cache.mkdir(parents=True)
    (cache / 'data.bin').write_bytes(b'stale')

    with pytest.raises(DownloadError) as excinfo:
        download('tiny')
    message = str(excinfo.value)
    for part in ("'tiny'", url, expected, sha1_of(PAYLOAD),
                 f'had sha1 {sha1_of(b"stale")} and was removed'):
        assert part in message
    assert server.requests == ['/data.bin'], 'downloaded again exactly once'
    assert leftover_files(cache) == []


# -------------------------------------------------- mirrors and progress ----

def test_folder_mirror(tmp_path, refused_url, cache, monkeypatch):
    folder = tmp_path / 'usb_stick'
    folder.mkdir()
    (folder / 'archive.bin').write_bytes(PAYLOAD)
    monkeypatch.setenv('D2L_DATA_MIRRORS', str(folder))
    path = download(refused_url, sha1_hash=sha1_of(PAYLOAD))
    assert Path(path).read_bytes() == PAYLOAD


def test_progress_bar_shown_for_big_downloads(faulty, cache, capfd,
                                              monkeypatch):
    monkeypatch.setattr(hub, 'PROGRESS_BAR_MIN_BYTES', len(PAYLOAD) // 2)
    monkeypatch.delenv('CI', raising=False)
    download(f'{faulty.url}/ok/data.bin')
    err = capfd.readouterr().err
    assert 'data.bin' in err and '100%' in err


@pytest.mark.parametrize('ci, shown', [('true', False), ('1', False),
                                        ('false', True), ('0', True), ('no', True)])
def test_progress_bar_follows_ci(faulty, cache, capfd, monkeypatch, ci, shown):
    monkeypatch.setattr(hub, 'PROGRESS_BAR_MIN_BYTES', len(PAYLOAD) // 2)
    monkeypatch.setenv('CI', ci)
    download(f'{faulty.url}/ok/data.bin')
    assert ('100%' in capfd.readouterr().err) == shown


def test_file_at_the_size_limit_shows_no_bar(faulty, cache, capfd, monkeypatch):
    monkeypatch.setattr(hub, 'PROGRESS_BAR_MIN_BYTES', len(PAYLOAD))
    monkeypatch.delenv('CI', raising=False)
    download(f'{faulty.url}/ok/data.bin')
    assert capfd.readouterr().err == ''


def test_cached_files_are_world_readable(faulty, cache):
    path = download(f'{faulty.url}/ok/data.bin')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


# ------------------------------------------------------- concurrency ----

CHILD_DOWNLOAD = textwrap.dedent('''
    import contextlib, os, sys
    sys.path.insert(0, os.environ['REPO_ROOT'])
    from d2l_shim import hub
    if os.environ.get('WITHOUT_LOCK'):
        # As if no lock could be had: only the atomic rename keeps the file whole.
        hub._lock = lambda path: contextlib.nullcontext()
    print('ready', flush=True)
    print(hub.download(sys.argv[1], sha1_hash=sys.argv[2], timeout=20))
''')


def start_downloaders(url, digest, cache, count=2, **env):
    environment = {key: value for key, value in os.environ.items()
                   if key != 'D2L_DATA_MIRRORS'}
    environment.update(D2L_DATA_DIR=str(cache), REPO_ROOT=str(REPO_ROOT),
                       **env)
    children = [subprocess.Popen(
        [sys.executable, '-c', CHILD_DOWNLOAD, url, digest],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(count)]
    for child in children:
        assert child.stdout.readline().strip() == 'ready'
    return children


def finish(children):
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_two_processes_take_turns(faulty, cache):
    """The second process waits on the lock, then finds the first's file."""
    data = os.urandom(512 * 1024)
    (faulty.directory / 'big.bin').write_bytes(data)
    children = start_downloaders(f'{faulty.url}/hold/big.bin',
                                 sha1_of(data), cache)
    time.sleep(0.3)  # both are inside download(): one fetching, one waiting
    faulty.httpd.release.set()
    paths = finish(children)
    assert paths == [str(cache / 'big.bin')] * 2
    assert (cache / 'big.bin').read_bytes() == data
    assert faulty.requests == ['/hold/big.bin'], 'fetched once, not twice'
    assert leftover_files(cache) == ['big.bin'], 'no temporary or lock file left'


def test_two_processes_without_lock_do_not_corrupt(faulty, cache):
    """Both really download at once; the atomic rename keeps one whole copy."""
    data = os.urandom(512 * 1024)
    (faulty.directory / 'big.bin').write_bytes(data)
    children = start_downloaders(f'{faulty.url}/together/big.bin',
                                 sha1_of(data), cache, WITHOUT_LOCK='1')
    paths = finish(children)
    assert paths == [str(cache / 'big.bin')] * 2
    assert faulty.requests == ['/together/big.bin'] * 2
    assert not faulty.httpd.both_asked.broken, 'the transfers overlapped'
    assert (cache / 'big.bin').read_bytes() == data
    assert leftover_files(cache) == ['big.bin']


def test_lock_left_by_a_killed_process_is_taken_over(faulty, cache):
    cache.mkdir(parents=True)
    lock = cache / '.data.bin.lock'
    holder = subprocess.Popen([sys.executable, '-c', textwrap.dedent('''
        import os, sys, time
        sys.path.insert(0, os.environ['REPO_ROOT'])
        from d2l_shim import hub
        held = hub._lock(sys.argv[1])
        held.acquire()
        print('locked', flush=True)
        time.sleep(60)
    '''), str(lock)], env={**os.environ, 'REPO_ROOT': str(REPO_ROOT)},
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    holder.kill()
    holder.wait(timeout=10)
    holder.stdout.close()
    assert lock.exists(), 'a killed holder cannot clean up'
    # In a child, so that a lock never given up fails the test instead of hanging it.
    [path] = finish(start_downloaders(f'{faulty.url}/ok/data.bin', sha1_of(PAYLOAD),
                                      cache, count=1))
    assert Path(path).read_bytes() == PAYLOAD
    assert leftover_files(cache) == ['data.bin']


def test_threads_take_turns_too(faulty, cache):
    data = os.urandom(256 * 1024)
    (faulty.directory / 'big.bin').write_bytes(data)
    url, results = f'{faulty.url}/hold/big.bin', []

    def fetch():
        results.append(download(url, sha1_hash=sha1_of(data), timeout=20))

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    faulty.httpd.release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [str(cache / 'big.bin')] * 3
    assert faulty.requests == ['/hold/big.bin'], 'fetched once'
    assert leftover_files(cache) == ['big.bin']


# ----------------------------------------------------------- extraction ----

def serve_archive(tmp_path, monkeypatch, name, archive_path):
    """Register ``archive_path`` in DATA_HUB under ``name`` via file://."""
    monkeypatch.setitem(hub.DATA_HUB, name,
                        (Path(archive_path).as_uri(), sha1_of_file(archive_path)))


def test_download_extract_wrapped_archive(tmp_path, cache, monkeypatch):
    archive = write_zip(tmp_path / 'noto_emoji_64.zip', {
        'noto_emoji_64/': b'',
        'noto_emoji_64/faces/a.png': b'A',
        'noto_emoji_64/faces/b.png': b'B',
    })
    serve_archive(tmp_path, monkeypatch, 'noto_emoji_64', archive)

    # d2l's folder argument names the top folder, on the first call as later.
    data_dir = download_extract('noto_emoji_64', 'noto_emoji_64')
    assert data_dir == str(cache / 'noto_emoji_64')
    assert (Path(data_dir) / 'faces' / 'a.png').read_bytes() == b'A'
    assert sorted(os.listdir(data_dir)) == ['faces'], 'no marker inside'
    assert download_extract('noto_emoji_64') == data_dir
    assert download_extract('noto_emoji_64', 'noto_emoji_64') == data_dir
    visible = [p for p in os.listdir(cache) if not p.startswith('.')]
    assert sorted(visible) == ['noto_emoji_64', 'noto_emoji_64.zip']
    assert not [p for p in os.listdir(cache) if 'extracting' in p
                or p.startswith('.trash')]


def test_download_extract_flat_archive_and_folder_argument(
        tmp_path, cache, monkeypatch):
    archive = write_tar_gz(tmp_path / 'aclImdb_v1.tar.gz', {
        'aclImdb/train/pos.txt': b'good',
        'README': b'read me',
    })
    serve_archive(tmp_path, monkeypatch, 'aclImdb', archive)

    data_dir = download_extract('aclImdb')
    assert data_dir == str(cache / 'aclImdb_v1')
    assert (Path(data_dir) / 'README').read_bytes() == b'read me'
    inner = download_extract('aclImdb', 'aclImdb')
    assert (Path(inner) / 'train' / 'pos.txt').read_bytes() == b'good'


def test_extraction_is_idempotent(tmp_path, cache, monkeypatch):
    archive = write_zip(tmp_path / 'pokemon.zip',
                        {'pokemon/1/a.png': b'A'})
    serve_archive(tmp_path, monkeypatch, 'pokemon', archive)
    data_dir = Path(download_extract('pokemon'))
    inode = data_dir.stat().st_ino

    (data_dir / 'note.txt').write_text('made after extraction')
    assert download_extract('pokemon') == str(data_dir)
    # A second extraction would have renamed a fresh folder into place.
    assert data_dir.stat().st_ino == inode
    assert (data_dir / 'note.txt').exists()


def test_changed_archive_is_extracted_again(tmp_path, cache):
    archive = write_zip(tmp_path / 'set.zip', {'set/v.txt': b'1'})
    out = tmp_path / 'out'
    data_dir = Path(extract(str(archive), str(out)))
    assert (data_dir / 'v.txt').read_bytes() == b'1'

    write_zip(archive, {'set/v.txt': b'2', 'set/new.txt': b'n'})
    assert extract(str(archive), str(out)) == str(data_dir)
    assert (data_dir / 'v.txt').read_bytes() == b'2'
    assert (data_dir / 'new.txt').exists()


def test_unfinished_extraction_is_not_trusted(tmp_path, cache):
    archive = write_zip(tmp_path / 'set.zip',
                        {'set/a.txt': b'a', 'set/b.txt': b'b'})
    out = tmp_path / 'out'
    # A folder from an interrupted run: no marker, missing files.
    (out / 'set').mkdir(parents=True)
    (out / 'set' / 'a.txt').write_bytes(b'a')

    data_dir = Path(extract(str(archive), str(out)))
    assert sorted(os.listdir(data_dir)) == ['a.txt', 'b.txt']


def test_zip_with_parent_member_is_refused(tmp_path, cache):
    archive = write_zip(tmp_path / 'bad.zip', {
        'bad/ok.txt': b'fine',
        'bad/../../evil': b'escaped',
    })
    out = tmp_path / 'out'
    with pytest.raises(UnsafeArchiveError, match=r'bad/\.\./\.\./evil'):
        extract(str(archive), str(out))
    assert not (tmp_path / 'evil').exists()
    assert not (out / 'bad').exists()
    assert leftover_files(out) == [], 'staging folder must be removed'


def test_zip_with_leading_parent_member_is_refused(tmp_path):
    archive = write_zip(tmp_path / 'bad.zip', {'../evil': b'escaped'})
    with pytest.raises(UnsafeArchiveError, match=r'\.\./evil'):
        extract(str(archive), str(tmp_path / 'out'))
    assert not (tmp_path / 'evil').exists()


def test_tar_with_absolute_member_stays_inside(tmp_path):
    """tarfile's 'data' filter strips the leading '/' instead of refusing."""
    absolute = tmp_path / 'elsewhere' / 'evil'
    archive = write_tar_gz(tmp_path / 'bad.tar.gz', {str(absolute): b'x'})
    data_dir = Path(extract(str(archive), str(tmp_path / 'out')))
    assert not absolute.exists()
    assert [p.read_bytes() for p in data_dir.rglob('evil')] == [b'x']


def test_tar_with_parent_member_is_refused(tmp_path):
    archive = write_tar_gz(tmp_path / 'bad.tar.gz', {'bad/../../evil': b'x'})
    with pytest.raises(UnsafeArchiveError, match=r'bad/\.\./\.\./evil'):
        extract(str(archive), str(tmp_path / 'out'))
    assert not (tmp_path / 'evil').exists()
    assert leftover_files(tmp_path / 'out') == []


def test_tar_with_device_file_is_refused(tmp_path):
    archive = tmp_path / 'dev.tar'
    with tarfile.open(archive, 'w') as tf:
        info = tarfile.TarInfo('dev/null')
        info.type = tarfile.CHRTYPE
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match='dev/null'):
        extract(str(archive), str(tmp_path / 'out'))


def test_tar_with_escaping_symlink_is_refused(tmp_path):
    archive = tmp_path / 'link.tar'
    with tarfile.open(archive, 'w') as tf:
        info = tarfile.TarInfo('link/escape')
        info.type = tarfile.SYMTYPE
        info.linkname = '../../../etc'
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match='link/escape'):
        extract(str(archive), str(tmp_path / 'out'))


def test_unsupported_archive_type(tmp_path):
    path = tmp_path / 'data.csv'
    path.write_text('a,b\n')
    with pytest.raises(ValueError, match='only zip and tar'):
        extract(str(path))


def test_tar_with_inside_symlink_is_fine(tmp_path):
    archive = tmp_path / 'pkg.tar'
    with tarfile.open(archive, 'w') as tf:
        data = tarfile.TarInfo('pkg/data.txt')
        data.size = 2
        tf.addfile(data, io.BytesIO(b'ok'))
        link = tarfile.TarInfo('pkg/sub/alias.txt')
        link.type = tarfile.SYMTYPE
        link.linkname = '../data.txt'
        tf.addfile(link)
    data_dir = Path(extract(str(archive), str(tmp_path / 'out')))
    assert (data_dir / 'sub' / 'alias.txt').read_bytes() == b'ok'


def test_a_lock_file_left_by_an_older_run_does_not_block(faulty, cache):
    cache.mkdir(parents=True)
    (cache / '.data.bin.lock').write_bytes(b'')  # e.g. from a release that kept a marker file
    [path] = finish(start_downloaders(f'{faulty.url}/ok/data.bin', sha1_of(PAYLOAD),
                                      cache, count=1))
    assert Path(path).read_bytes() == PAYLOAD
