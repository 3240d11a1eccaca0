"""Tests for d2l_shim.hub: downloads, caching, verification, extraction.

Only file:// URLs and HTTP servers started here on 127.0.0.1 are used; no
other address is ever contacted.
"""

import functools
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from d2l_shim import hub
from d2l_shim.hub import (DownloadError, UnsafeArchiveError, data_root,
                          download, download_extract, extract, sha1)

PAYLOAD = b'pixels of a tiny data set\n' * 100


def sha1_of(data):
    return hashlib.sha1(data).hexdigest()


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


@pytest.fixture
def cache(isolated_environment):
    return isolated_environment


class QuietRecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder and records every requested path."""

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


class LocalServer:
    """An HTTP server on 127.0.0.1 with a random free port, in a thread."""

    def __init__(self, directory, handler=QuietRecordingHandler):
        handler = functools.partial(handler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     handler)
        self.httpd.requests = []
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
def refused_url():
    """A URL on a port that is bound but not listening: connect is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    yield f'http://127.0.0.1:{port}/data/archive.bin'
    sock.close()


def leftover_files(folder):
    """Every file under ``folder`` (temporary files included)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


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
    assert sha1(path) == sha1_of(data)


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
    assert 'place it at' in message
    assert isinstance(excinfo.value, OSError)
    assert leftover_files(cache) == []


def test_http_404_raises_and_leaves_nothing(server, cache):
    url = f'{server.url}/missing.zip'
    with pytest.raises(DownloadError, match='HTTP error 404') as excinfo:
        download(url, sha1_hash='1' * 40)
    assert url in str(excinfo.value)
    assert excinfo.value.__cause__ is not None
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


def test_connection_refused_explains_what_to_do(refused_url, cache):
    with pytest.raises(DownloadError) as excinfo:
        download(refused_url, sha1_hash='2' * 40)
    message = str(excinfo.value)
    assert refused_url in message
    assert 'connection refused' in message
    assert str(cache / 'archive.bin') in message
    assert 'D2L_DATA_MIRRORS' in message
    assert '\n' not in message, 'the explanation is one paragraph'
    assert excinfo.value.__cause__ is not None
    assert leftover_files(cache) == []


def test_timeout_is_reported(cache):
    # A listening socket that never answers: connect works, reading stalls.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen(1)
        url = f'http://127.0.0.1:{silent.getsockname()[1]}/slow.bin'
        with pytest.raises(DownloadError, match='timed out'):
            download(url, timeout=0.3)
    assert leftover_files(cache) == []


def test_timeout_from_environment(monkeypatch):
    monkeypatch.setenv('D2L_DOWNLOAD_TIMEOUT', '2.5')
    assert hub._timeout_seconds(None) == 2.5
    assert hub._timeout_seconds(7) == 7.0
    monkeypatch.setenv('D2L_DOWNLOAD_TIMEOUT', 'soon')
    with pytest.raises(ValueError, match='D2L_DOWNLOAD_TIMEOUT'):
        hub._timeout_seconds(None)


class TruncatingHandler(QuietRecordingHandler):
    """Promises more bytes than it sends, then hangs up."""

    def do_GET(self):
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header('Content-Length', str(len(PAYLOAD) * 2))
        self.end_headers()
        self.wfile.write(PAYLOAD)
        self.wfile.flush()
        self.close_connection = True


def test_truncated_transfer_leaves_nothing(make_server, cache):
    server = make_server(handler=TruncatingHandler)
    with pytest.raises(DownloadError):
        download(f'{server.url}/data.bin')
    assert leftover_files(cache) == []


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


def test_progress_bar_only_for_big_files_outside_ci(monkeypatch):
    monkeypatch.delenv('CI', raising=False)
    assert not hub._show_progress(1024)
    assert not hub._show_progress(None)
    assert hub._show_progress(50 * 1024 * 1024)
    monkeypatch.setenv('CI', 'true')
    assert not hub._show_progress(50 * 1024 * 1024)


# ----------------------------------------------------------- extraction ----

def serve_archive(tmp_path, monkeypatch, name, archive_path):
    """Register ``archive_path`` in DATA_HUB under ``name`` via file://."""
    monkeypatch.setitem(hub.DATA_HUB, name,
                        (Path(archive_path).as_uri(), sha1(archive_path)))


def test_download_extract_wrapped_archive(tmp_path, cache, monkeypatch):
    archive = write_zip(tmp_path / 'noto_emoji_64.zip', {
        'noto_emoji_64/': b'',
        'noto_emoji_64/faces/a.png': b'A',
        'noto_emoji_64/faces/b.png': b'B',
    })
    serve_archive(tmp_path, monkeypatch, 'noto_emoji_64', archive)

    data_dir = download_extract('noto_emoji_64')
    assert data_dir == str(cache / 'noto_emoji_64')
    assert (Path(data_dir) / 'faces' / 'a.png').read_bytes() == b'A'
    assert sorted(os.listdir(data_dir)) == ['faces'], 'no marker inside'
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

    calls = []
    real_extract = hub._extract_archive_into
    monkeypatch.setattr(hub, '_extract_archive_into',
                        lambda *a: calls.append(a) or real_extract(*a))
    (data_dir / 'note.txt').write_text('made after extraction')
    assert download_extract('pokemon') == str(data_dir)
    assert calls == [], 'second call must not extract again'
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


def test_tar_with_absolute_member_is_refused(tmp_path):
    archive = write_tar_gz(tmp_path / 'bad.tar.gz', {'/tmp/evil': b'x'})
    with pytest.raises(UnsafeArchiveError, match='/tmp/evil'):
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
