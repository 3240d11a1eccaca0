"""The data hub: download, verify, cache and extract data sets, under d2l's names.

Uses requests, urllib3's Retry and filelock, not pooch (no file://, mirrors or locks; retries 404s).

Environment: ``D2L_DATA_DIR`` (the cache), ``D2L_DATA_MIRRORS`` (base URLs or folders, split
by spaces or commas, tried in order before an http(s) URL, each serving the file under its own
name), ``D2L_DOWNLOAD_TIMEOUT`` (seconds) and ``CI`` (no progress bar).  A 5xx, a reset or a
cut body is retried; a refused connection, a 4xx, a timeout or a wrong sha1 is not.
"""

import contextlib
import os
import pathlib
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
from urllib.request import url2pathname

import filelock
import requests
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError
from urllib3.util import Retry

from .datasets_registry import DATA_SETS
from .files import sha1_of_file, write_atomically

_lock = filelock.FileLock  # the OS drops the lock when its holder dies; the empty file stays

DATA_URL = 'http://d2l-data.s3-accelerate.amazonaws.com/'
#: Registered data sets: name -> (url, sha1 hex digest).
DATA_HUB = dict(DATA_SETS)

MIRRORS_ENV = 'D2L_DATA_MIRRORS'
TIMEOUT_ENV = 'D2L_DOWNLOAD_TIMEOUT'
DEFAULT_TIMEOUT_SECONDS = 60.0
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = 1.0
PROGRESS_BAR_MIN_BYTES = 5 * 1024 * 1024  # smaller files are done before a bar tells anything
_CHUNK_BYTES = 1024 * 1024


class DownloadError(OSError):
    """No source delivered the file with the expected sha1; the message says what to do."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the extraction folder."""


#: The shim's cache folder unless ``$D2L_DATA_DIR`` names another for the data.
CACHE_ROOT = os.path.join('~', '.cache', 'd2l_shim')


def data_root():
    """The cache folder, ``$D2L_DATA_DIR`` or ``~/.cache/d2l_shim``, created on demand."""
    root = os.path.abspath(os.path.expanduser(os.getenv('D2L_DATA_DIR') or CACHE_ROOT))
    os.makedirs(root, exist_ok=True)
    return root


def _sources(url_or_name, sha1_hash):
    """(data set name, file name, expected sha1, URLs to try in order) for a URL or hub name."""
    name, url = None, url_or_name
    for known, (known_url, registered_sha1) in DATA_HUB.items():
        if url_or_name in (known, known_url):
            name, url, sha1_hash = known, known_url, sha1_hash or registered_sha1
    if '://' not in url:
        raise ValueError(f'{url!r} is neither a URL nor a data set registered in DATA_HUB; '
                         f'registered data sets: {", ".join(sorted(DATA_HUB))}')
    file_name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit('/', 1)[-1])
    if file_name in ('', '.', '..'):
        raise ValueError(f'cannot tell a file name from the URL {url!r}; it must end with one')
    urls = [url]
    if urllib.parse.urlsplit(url).scheme in ('http', 'https'):  # mirrors stand in for remote files
        bases = [b if '://' in b else pathlib.Path(os.path.expanduser(b)).resolve().as_uri()
                 for b in re.split(r'[\s,]+', os.environ.get(MIRRORS_ENV, '')) if b]
        urls = [b.rstrip('/') + '/' + urllib.parse.quote(file_name) for b in bases] + urls
    return name or file_name, file_name, sha1_hash, urls


class _SourceFailed(Exception):
    """One source failed; ``actual_sha1`` is set if it delivered the wrong content."""

    def __init__(self, url, reason, actual_sha1=None):
        super().__init__(f'{url}: {reason}')
        self.actual_sha1 = actual_sha1


def _describe(err, timeout):
    """A few words on ``err``, taken from the innermost exception behind it."""
    chain = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__ or next(
            (arg for arg in err.args if isinstance(arg, BaseException)), None)
    root = chain[-1]
    if isinstance(root, TimeoutError):
        return f'no answer within {timeout:g} s (timed out)'
    return root.strerror.lower() if isinstance(root, OSError) and root.strerror else str(root)


class _Retry(Retry):
    """urllib3's policy, but a silent server is not asked again: it would only stretch the wait."""

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs):
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, *args, **kwargs)


def _with_progress(out, response, name):
    """``out``, its writes drawn as a tqdm bar for a big download outside CI."""
    length = response.headers.get('Content-Length', '')
    in_ci = os.environ.get('CI', '').strip().lower() not in ('', '0', 'false', 'no')
    if not length.isdigit() or int(length) <= PROGRESS_BAR_MIN_BYTES or in_ci:
        return contextlib.nullcontext(out)
    from tqdm.auto import tqdm  # imported only when a bar is drawn
    return tqdm.wrapattr(out, 'write', total=int(length), desc=name)


def _copy_http(url, out, timeout, name):
    """Stream ``url`` into ``out``; failed answers and cut bodies share one retry budget."""
    retry = _Retry(total=RETRY_ATTEMPTS - 1, connect=0, backoff_factor=RETRY_BACKOFF_SECONDS,
                   status_forcelist=range(500, 600), raise_on_status=False,
                   respect_retry_after_header=False)  # a Retry-After of hours would stall a cell
    with requests.Session() as session:
        while True:
            for prefix in ('http://', 'https://'):
                session.mount(prefix, requests.adapters.HTTPAdapter(max_retries=retry))
            # 'identity': the file's own bytes, those its sha1 was taken of, even for a .gz.
            with session.get(url, stream=True, timeout=timeout,
                             headers={'Accept-Encoding': 'identity'}) as reply:
                if not 200 <= reply.status_code < 300:
                    raise _SourceFailed(url, f'HTTP error {reply.status_code} {reply.reason}')
                try:
                    with _with_progress(out, reply, name) as sink:
                        for chunk in reply.raw.stream(_CHUNK_BYTES, decode_content=False):
                            sink.write(chunk)
                    return
                except ProtocolError as err:  # cut short: retry from scratch, raising once spent
                    out.seek(0)
                    out.truncate()
                    retry = reply.raw.retries.increment('GET', url, error=err)
            retry.sleep()


def _fetch_into(url, target, expected_sha1, timeout):
    """Fetch one source into ``target``, which appears only once its sha1 is verified."""
    def fetch(out):
        if url.startswith('file:'):
            with open(url2pathname(urllib.parse.urlsplit(url).path), 'rb') as src:
                shutil.copyfileobj(src, out, _CHUNK_BYTES)
        else:
            _copy_http(url, out, timeout, os.path.basename(target))
        out.flush()
        actual = sha1_of_file(out.name)
        if expected_sha1 and actual != expected_sha1.lower():
            raise _SourceFailed(url, f'sha1 mismatch: expected {expected_sha1}, got {actual}',
                                actual_sha1=actual)
    try:
        write_atomically(target, fetch)
    except (HTTPError, OSError) as err:
        raise _SourceFailed(url, _describe(err, timeout)) from err


def _failure_message(name, target, expected_sha1, failures, stale_sha1):
    file_name, tried = os.path.basename(target), '; '.join(map(str, failures))
    stale = f' The copy in the cache had sha1 {stale_sha1} and was removed.' if stale_sha1 else ''
    must = f' (its sha1 must be {expected_sha1})' if expected_sha1 else ''
    trust = (f' If you trust the new content, register its sha1 in DATA_HUB[{name!r}] or pass it '
             f'as sha1_hash.' if any(failure.actual_sha1 for failure in failures) else '')
    return (f'Could not download data set {name!r} (file {file_name!r}); nothing was saved. '
            f'Tried: {tried}.{stale} Without internet access, fetch the file elsewhere and '
            f'place it by hand at {target!r}{must}, or set the environment variable '
            f'{MIRRORS_ENV} to base URLs or folders (separated by spaces or commas) that serve '
            f'{file_name!r}.{trust}')


def _cached(path, expected_sha1):
    # Files get their final name only once complete: without a hash, existing is enough.
    return os.path.isfile(path) and (
        not expected_sha1 or sha1_of_file(path) == expected_sha1.lower())


def download(url_or_name, folder=None, sha1_hash=None, *, timeout=None):
    """Fetch a hub name or an http(s)/file URL into ``folder`` (default :func:`data_root`).

    A cached copy with a wrong sha1 is fetched once more; new copies appear only verified.
    """
    name, file_name, expected_sha1, urls = _sources(url_or_name, sha1_hash)
    folder = data_root() if folder is None else folder
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, file_name)
    if _cached(target, expected_sha1):
        return target
    timeout = os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        timeout = float(timeout)
    except ValueError:
        raise ValueError(f'{TIMEOUT_ENV} must be a number of seconds, got {timeout!r}') from None
    with _lock(os.path.join(folder, f'.{file_name}.lock')):
        if _cached(target, expected_sha1):  # another process fetched it while we waited
            return target
        stale_sha1 = sha1_of_file(target) if os.path.isfile(target) else None
        if stale_sha1:
            os.remove(target)  # left in place, it would pass a check of existence alone
        failures = []
        for url in urls:
            try:
                _fetch_into(url, target, expected_sha1, timeout)
                return target
            except _SourceFailed as failure:
                failures.append(failure)
    raise DownloadError(_failure_message(name, target, expected_sha1, failures, stale_sha1)) \
        from failures[-1].__cause__


def _archive_stem(path):
    match = re.fullmatch(r'(.+?)\.(tar(\.gz|\.bz2|\.xz)?|tgz|zip)', os.path.basename(path), re.I)
    if match is None:
        raise ValueError(f'only zip and tar archives can be extracted, got {path!r}')
    return match.group(1)


def _unpack(archive, destination):
    """Unpack a zip or tar archive, refusing any member that would land outside."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = member.replace('\\', '/').split('/')
                if parts[0] == '' or re.match(r'[A-Za-z]:', member) or '..' in parts:
                    raise UnsafeArchiveError(f'refusing to extract member {member!r} of archive '
                                             f'{archive!r}: it would land outside the folder')
            return zf.extractall(destination)
    try:
        with tarfile.open(archive) as tf:
            tf.extractall(destination, filter='data')  # refuses escaping paths, links, devices
    except tarfile.FilterError as err:
        raise UnsafeArchiveError(f'refusing to extract archive {archive!r}: {err}') from err


def _extract_once(archive, parent):
    """Unpack ``archive`` as ``<parent>/<stem>`` unless done already; return (that, wrapped).

    ``wrapped``: the archive kept everything in one top folder named ``<stem>``.  The marker,
    written last, holds the archive's sha1, so a half or stale folder is unpacked again.
    """
    digest, stem = sha1_of_file(archive), _archive_stem(archive)
    target, marker = os.path.join(parent, stem), os.path.join(parent, f'.{stem}.d2l_shim_extracted')
    os.makedirs(parent, exist_ok=True)
    with _lock(os.path.join(parent, f'.{stem}.lock')):
        with contextlib.suppress(FileNotFoundError, ValueError):
            with open(marker, encoding='utf-8') as f:
                recorded, layout = f.read().split()
            if recorded == digest and os.path.isdir(target):
                return target, layout == 'wrapped'
        work = tempfile.mkdtemp(dir=parent, prefix=f'.{stem}.extracting-')
        try:
            staging = os.path.join(work, 'new')
            os.mkdir(staging)
            _unpack(archive, staging)
            wrapped = os.listdir(staging) == [stem] and os.path.isdir(os.path.join(staging, stem))
            with contextlib.suppress(FileNotFoundError):
                os.remove(marker)  # from here on the old folder is not trusted
            if os.path.lexists(target):
                os.replace(target, os.path.join(work, 'old'))  # deleted with the work folder
            os.replace(os.path.join(staging, stem) if wrapped else staging, target)
            with open(marker, 'w', encoding='utf-8') as f:
                f.write(f'{digest} {"wrapped" if wrapped else "flat"}\n')
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target, wrapped


def extract(filename, folder=None):
    """Extract an archive into ``<folder>/<stem>``; a ``<stem>/`` top folder is not nested."""
    return _extract_once(filename, os.path.abspath(folder or os.path.dirname(filename)))[0]


def download_extract(name, folder=None):
    """Download and extract an archive; return ``<cache>/<stem>``, or its ``folder`` as d2l."""
    archive = download(name)
    target, wrapped = _extract_once(archive, os.path.dirname(archive))
    if folder:  # a wrapped archive's top folder is ``target`` itself; a flat one's is inside
        target = os.path.join(os.path.dirname(target) if wrapped else target, folder)
    return target
