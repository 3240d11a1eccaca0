"""The data hub: download, verify, cache and extract data sets.

Names and signatures follow the ``d2l`` package (``DATA_HUB``, ``DATA_URL``,
``download``, ``extract``, ``download_extract``, ``download_all``) so that
book code written for it runs unchanged.

Where files are kept
    Downloads are cached in ``data_root()``: the folder named by the
    environment variable ``D2L_DATA_DIR`` if it is set, otherwise
    ``~/.cache/d2l_shim``.  It never depends on the current directory, so
    notebooks in different folders share one cache.  It is created on
    demand.

Environment variables
    ``D2L_DATA_DIR``
        Cache folder (see above).
    ``D2L_DATA_MIRRORS``
        Base URLs, separated by spaces or commas, tried in order before the
        original URL of an http(s) download.  A mirror must serve the file
        under the same name, the last path component of the original URL:
        for ``https://host/a/pokemon.zip`` and the mirror
        ``http://intranet/d2l`` the request is
        ``http://intranet/d2l/pokemon.zip``.  A base without ``://`` is a
        local folder holding the files (a folder whose path has spaces must
        be given as a ``file://`` URL).
    ``D2L_DOWNLOAD_TIMEOUT``
        Seconds to wait for a server before giving up (default 60).
    ``CI``
        When set (to anything but ``0``, ``false`` or ``no``), no progress
        bar is shown.

Failures that pass
    A connection reset, a server error (HTTP 5xx) or a body cut short is
    tried again, ``RETRY_ATTEMPTS`` times in all, waiting
    ``RETRY_BACKOFF_SECONDS`` and then twice as long each time.  Client
    errors (HTTP 4xx), refused connections, unknown hosts, timeouts and
    sha1 mismatches are not retried: asking again would fail the same way,
    or (for a timeout) only multiply the wait.  The next mirror, if any, is
    tried instead.

Concurrency
    Two processes (or threads) downloading the same file take turns on a
    lock file next to it, so the second finds the first one's copy.  Where
    file locks are unavailable (Windows, some network file systems) both
    download, each into its own temporary file, and the atomic rename
    leaves one complete, verified copy.

Sources
    ``http://``, ``https://`` and ``file://`` URLs all take the same path
    through urllib: the package ships its own small data set as a
    ``file://`` URL, and it is copied, verified and cached exactly like a
    download.

Errors
    Every failure to obtain a file raises :class:`DownloadError`, a subclass
    of ``OSError``, with a message that names the data set, the URLs tried,
    and what the user can do (place the file by hand, set a mirror).  An
    archive member that would be written outside the target folder raises
    :class:`UnsafeArchiveError`, a subclass of ``ValueError``.
"""

import contextlib
import hashlib
import http.client
import os
import pathlib
import posixpath
import re
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

try:
    import fcntl
except ImportError:  # Windows: downloads rely on the atomic rename alone
    fcntl = None

__all__ = ['DATA_HUB', 'DATA_URL', 'DownloadError', 'UnsafeArchiveError',
           'data_root', 'sha1', 'download', 'extract', 'download_extract',
           'download_all']

DATA_URL = 'http://d2l-data.s3-accelerate.amazonaws.com/'

#: Registered data sets: name -> (url, sha1 hex digest).
DATA_HUB = {}

DATA_DIR_ENV = 'D2L_DATA_DIR'
MIRRORS_ENV = 'D2L_DATA_MIRRORS'
TIMEOUT_ENV = 'D2L_DOWNLOAD_TIMEOUT'
DEFAULT_TIMEOUT_SECONDS = 60.0

# Small files finish before a progress bar would tell the reader anything.
PROGRESS_BAR_MIN_BYTES = 5 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024

#: Tries per source for transient failures (connection reset, HTTP 5xx, body
#: cut short), and the wait before the first retry; it doubles each time.
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = 1.0

# Cached files are shared data: readable by everyone, as open() would make
# them under the usual umask 022 (mkstemp and mkdtemp create 0600 and 0700).
_FILE_MODE = 0o644
_FOLDER_MODE = 0o755

# Suffixes removed from an archive's file name to name its folder; longer
# ones first so that 'x.tar.gz' becomes 'x', not 'x.tar'.
_ARCHIVE_SUFFIXES = ('.tar.gz', '.tar.bz2', '.tar.xz', '.tgz', '.zip', '.tar')

_EXTRACTED_MARKER_SUFFIX = '.d2l_shim_extracted'


class DownloadError(OSError):
    """A data file could not be obtained or failed its sha1 check."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction folder."""


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def data_root():
    """Return the cache folder (``$D2L_DATA_DIR`` or ``~/.cache/d2l_shim``).

    The folder is created if it does not exist yet.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        root = os.path.expanduser(configured)
    else:
        root = os.path.join(os.path.expanduser('~'), '.cache', 'd2l_shim')
    root = os.path.abspath(root)
    os.makedirs(root, exist_ok=True)
    return root


def sha1(path):
    """Return the sha1 hex digest of the file at ``path``, read in chunks."""
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _file_name_from_url(url):
    """The last path component of ``url`` (unquoted), used as file name."""
    path = urllib.parse.urlsplit(url).path
    name = urllib.parse.unquote(posixpath.basename(path))
    if not name or name in ('.', '..'):
        raise ValueError(f'cannot tell a file name from the URL {url!r}; '
                         f'it must end with the file name')
    return name


def _is_url(text):
    return '://' in text


def _resolve_source(url_or_name, sha1_hash):
    """Return (data set name, url, expected sha1) for a URL or hub name."""
    if not _is_url(url_or_name):
        if url_or_name not in DATA_HUB:
            known = ', '.join(sorted(DATA_HUB)) or '(none registered)'
            raise ValueError(
                f'{url_or_name!r} is neither a URL nor a data set registered '
                f'in DATA_HUB; registered data sets: {known}')
        url, registered_hash = DATA_HUB[url_or_name]
        return url_or_name, url, sha1_hash or registered_hash
    for name, (url, registered_hash) in DATA_HUB.items():
        if url == url_or_name:
            return name, url, sha1_hash or registered_hash
    return _file_name_from_url(url_or_name), url_or_name, sha1_hash


def _mirror_bases():
    """Base URLs from ``$D2L_DATA_MIRRORS``, in the order given."""
    return [base for base in re.split(r'[\s,]+',
                                      os.environ.get(MIRRORS_ENV, ''))
            if base]


def _candidate_urls(url):
    """URLs to try for ``url``: the mirrors first, then ``url`` itself.

    Mirrors only stand in for remote files; a ``file://`` URL is already
    local, so asking a mirror first would only add latency.
    """
    if urllib.parse.urlsplit(url).scheme not in ('http', 'https'):
        return [url]
    file_name = urllib.parse.quote(_file_name_from_url(url))
    mirrors = [_base_as_url(base).rstrip('/') + '/' + file_name
               for base in _mirror_bases()]
    return mirrors + [url]


def _base_as_url(base):
    """A mirror base as a URL; a plain folder path becomes a file:// URL."""
    if _is_url(base):
        return base
    return pathlib.Path(os.path.expanduser(base)).resolve().as_uri()


def _timeout_seconds(timeout):
    if timeout is not None:
        return float(timeout)
    configured = os.environ.get(TIMEOUT_ENV)
    if not configured:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        return float(configured)
    except ValueError:
        raise ValueError(f'{TIMEOUT_ENV} must be a number of seconds, got '
                         f'{configured!r}') from None


def _running_in_ci():
    """True if ``$CI`` is set to something other than a "no" value."""
    value = os.environ.get('CI', '').strip().lower()
    return value not in ('', '0', 'false', 'no')


def _show_progress(total_bytes):
    return (total_bytes is not None and total_bytes > PROGRESS_BAR_MIN_BYTES
            and not _running_in_ci())


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------

class _SourceFailed(Exception):
    """One candidate URL failed; ``reason`` says why in a few words.

    ``transient`` marks failures worth another try (see the module
    docstring); ``actual_sha1`` is set for a complete body with the wrong
    content.
    """

    def __init__(self, url, reason, actual_sha1=None, transient=False):
        super().__init__(f'{url}: {reason}')
        self.url = url
        self.reason = reason
        self.actual_sha1 = actual_sha1
        self.transient = transient
        self.attempts = 1

    def __str__(self):
        tries = f' ({self.attempts} attempts)' if self.attempts > 1 else ''
        return f'{self.url}: {self.reason}{tries}'


def _network_cause(err):
    """The underlying exception of a urllib error (or the error itself)."""
    if isinstance(err, urllib.error.URLError) and \
            not isinstance(err, urllib.error.HTTPError):
        return err.reason
    return err


def _is_transient(err):
    """True for failures that a later try may not see: 5xx, resets.

    http.client.RemoteDisconnected (the server hung up before answering)
    is a ConnectionResetError, so it counts as a reset.
    """
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500
    cause = _network_cause(err)
    return isinstance(cause, (ConnectionResetError, ConnectionAbortedError,
                              BrokenPipeError, http.client.IncompleteRead))


def _describe_network_error(err, timeout):
    """A short human reason for a urllib / socket / http.client error."""
    if isinstance(err, urllib.error.HTTPError):
        return f'HTTP error {err.code} {err.reason}'
    reason = _network_cause(err)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f'no answer within {timeout:g} s (timed out)'
    if isinstance(reason, ConnectionRefusedError):
        return 'connection refused'
    if isinstance(reason, ConnectionResetError):
        return f'connection reset by the server ({reason})'
    if isinstance(reason, socket.gaierror):
        return f'host name could not be resolved ({reason})'
    if isinstance(reason, FileNotFoundError):
        return 'file not found'
    return f'{type(reason).__name__}: {reason}'


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException,
                   ConnectionError, TimeoutError, socket.timeout)


def _stream_to_temp_file(url, folder, file_name, timeout):
    """Fetch ``url`` into a new temporary file in ``folder``.

    Returns (temporary path, sha1 of the bytes received).  The temporary
    file is removed if anything goes wrong, so no partial file is left.
    """
    fd, temp_path = tempfile.mkstemp(dir=folder, prefix=f'.{file_name}.',
                                     suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as out:
            digest = _copy_response(url, out, file_name, timeout)
        os.chmod(temp_path, _FILE_MODE)
        return temp_path, digest
    except BaseException:
        _remove_quietly(temp_path)
        raise


def _copy_response(url, out, file_name, timeout):
    """Copy the body of ``url`` into ``out``; return its sha1 hex digest.

    Redirects are followed (by urllib); the file keeps the name of the URL
    asked for.
    """
    digest = hashlib.sha1()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = getattr(response, 'status', None)
            # urllib raises HTTPError for 4xx/5xx; any other non-2xx status
            # (e.g. an unfollowed redirect) is not the file either.
            if status is not None and not 200 <= status < 300:
                raise _SourceFailed(url, f'unexpected HTTP status {status}')
            length = response.headers.get('Content-Length')
            total = int(length) if length and length.isdigit() else None
            received = _copy_chunks(response, out, digest, total, file_name)
    except _NETWORK_ERRORS as err:
        if isinstance(err, urllib.error.HTTPError):
            err.close()  # it holds the error page's open connection
        raise _SourceFailed(url, _describe_network_error(err, timeout),
                            transient=_is_transient(err)) from err
    if total is not None and received != total:
        # http.client reports a connection closed early as a short read,
        # not as an error; the declared length is the only witness.
        raise _SourceFailed(url, f'connection closed after {received} of '
                                 f'{total} bytes', transient=True)
    return digest.hexdigest()


def _copy_chunks(response, out, digest, total, file_name):
    """Write the response in chunks, updating ``digest``; return bytes."""
    progress = None
    if _show_progress(total):
        from tqdm.auto import tqdm
        progress = tqdm(total=total, unit='B', unit_scale=True,
                        unit_divisor=1024, desc=file_name)
    received = 0
    try:
        for chunk in iter(lambda: response.read(_CHUNK_BYTES), b''):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if progress is not None:
                progress.update(len(chunk))
    finally:
        if progress is not None:
            progress.close()
    return received


def _fetch_verified(url, folder, file_name, expected_sha1, timeout):
    """Download ``url`` to a temporary file and check its sha1 afterwards.

    Returns the temporary path; raises _SourceFailed (leaving nothing
    behind) on a network error or a sha1 mismatch.
    """
    temp_path, actual_sha1 = _stream_to_temp_file(url, folder, file_name,
                                                  timeout)
    if expected_sha1 and actual_sha1 != expected_sha1.lower():
        _remove_quietly(temp_path)
        raise _SourceFailed(url, f'sha1 mismatch: expected {expected_sha1}, '
                                 f'got {actual_sha1}', actual_sha1)
    return temp_path


def _backoff_seconds(retry_number):
    """Wait before retry 1, 2, ...: the base delay, doubled each time."""
    return RETRY_BACKOFF_SECONDS * 2 ** (retry_number - 1)


def _sleep(seconds):
    time.sleep(seconds)  # a seam for the tests, which record the waits


def _fetch_with_retries(url, folder, file_name, expected_sha1, timeout):
    """:func:`_fetch_verified`, tried again after transient failures only.

    At most ``RETRY_ATTEMPTS`` tries; the last failure is raised with the
    number of attempts recorded.
    """
    attempt = 1
    while True:
        try:
            return _fetch_verified(url, folder, file_name, expected_sha1,
                                   timeout)
        except _SourceFailed as failure:
            failure.attempts = attempt
            if not failure.transient or attempt >= RETRY_ATTEMPTS:
                raise
        _sleep(_backoff_seconds(attempt))
        attempt += 1


def _failure_message(name, file_name, target, expected_sha1, failures,
                     stale_sha1=None):
    """One paragraph: what failed, where, and what the user can do."""
    tried = '; '.join(str(failure) for failure in failures)
    stale_note = ''
    if stale_sha1 is not None:
        stale_note = (f' The copy that was in the cache had sha1 '
                      f'{stale_sha1} and was removed.')
    mismatches = [f for f in failures if f.actual_sha1 is not None]
    if mismatches and len(mismatches) == len(failures):
        update_hint = (f'register its sha1 in DATA_HUB[{name!r}]'
                       if name in DATA_HUB else
                       'pass its sha1 as the sha1_hash argument')
        return (
            f'Data set {name!r}: the file {file_name!r} was downloaded but '
            f'its content is not the expected one ({tried}). The transfer '
            f'may have been corrupted or the file changed upstream; nothing '
            f'was saved.{stale_note} Try again later, or get a copy with '
            f'sha1 {expected_sha1} and place it at {target!r}. If you trust '
            f'the new file, {update_hint}.')
    hash_hint = f' (its sha1 must be {expected_sha1})' if expected_sha1 else ''
    return (
        f'Could not download data set {name!r} (file {file_name!r}). '
        f'Tried: {tried}.{stale_note} If this machine has no internet '
        f'access, fetch the file elsewhere and place it by hand at '
        f'{target!r}{hash_hint}, or set the environment variable '
        f'{MIRRORS_ENV} to base URLs or folders (separated by spaces or '
        f'commas) that serve {file_name!r}; they are tried in order before '
        f'the original URL.')


def _cached(path, expected_sha1):
    """True if ``path`` holds a usable copy.

    Without an expected hash any existing file counts: files only ever
    appear under their final name once complete (see :func:`download`).
    """
    if not os.path.isfile(path):
        return False
    return not expected_sha1 or sha1(path) == expected_sha1.lower()


def _discard_stale_copy(path):
    """Remove a cached file that failed its check; return its sha1 or None.

    A file with the wrong sha1 is never returned, and left in place it
    would look cached to anything that only checks that the file exists.
    """
    if not os.path.isfile(path):
        return None
    stale_sha1 = sha1(path)
    _remove_quietly(path)
    return stale_sha1


def _lock_path(target):
    parent, name = os.path.split(target)
    return os.path.join(parent, f'.{name}.lock')


@contextlib.contextmanager
def _exclusive_lock(lock_path):
    """Hold an exclusive lock on ``lock_path`` (created and removed here).

    The lock file is deleted on release while still locked, so a waiter
    that then gets the lock may hold a file that no longer has a name; it
    checks that and starts over on the new file.  Without ``fcntl`` or
    where ``flock`` is refused (some network file systems) no lock is
    taken: downloads then rely on the atomic rename alone.
    """
    fd = _acquire_lock_file(lock_path) if fcntl is not None else None
    try:
        yield
    finally:
        if fd is not None:
            _remove_quietly(lock_path)
            os.close(fd)


def _acquire_lock_file(lock_path):
    """Open and flock ``lock_path``; the locked fd, or None if unsupported."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            return None
        if _names_open_file(lock_path, fd):
            return fd
        os.close(fd)  # the holder removed it meanwhile: lock the new one


def _names_open_file(path, fd):
    """True if ``path`` still names the file open as ``fd``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _download_into(target, name, url, expected_sha1, timeout, stale_sha1):
    """Try each source for ``url``; rename a verified copy to ``target``."""
    folder, file_name = os.path.split(target)
    failures = []
    for candidate in _candidate_urls(url):
        try:
            temp_path = _fetch_with_retries(candidate, folder, file_name,
                                            expected_sha1, timeout)
        except _SourceFailed as failure:
            failures.append(failure)
            continue
        try:
            os.replace(temp_path, target)
        except BaseException:
            _remove_quietly(temp_path)
            raise
        return target
    raise DownloadError(_failure_message(name, file_name, target,
                                         expected_sha1, failures,
                                         stale_sha1)) \
        from failures[-1].__cause__


def download(url, folder=None, sha1_hash=None, *, timeout=None):
    """Download a file into ``folder`` (default: :func:`data_root`).

    Args:
        url: a name registered in ``DATA_HUB`` (its URL and sha1 are used)
            or an ``http``, ``https`` or ``file`` URL.
        folder: where to keep the file; created if needed.
        sha1_hash: expected sha1 hex digest; None skips verification
            (for hub names the registered digest is used).
        timeout: seconds to wait for a server; default
            ``$D2L_DOWNLOAD_TIMEOUT`` or 60.

    Returns:
        The path of the local file, named after the URL's last component.

    A cached file with the right sha1 is returned at once.  One with a
    wrong sha1 is removed and fetched again, once: if the fresh copy is
    wrong too, the error names the data set, the URL and both hashes.  The
    data is streamed into a temporary file in ``folder``, its sha1 is
    checked after the transfer, and only then is it renamed to the final
    name, so an interrupted or corrupted download never looks like a cached
    file.  Transient failures are retried (see the module docstring).
    Raises :class:`DownloadError` if no source delivered the file.
    """
    name, url, expected_sha1 = _resolve_source(url, sha1_hash)
    folder = data_root() if folder is None else folder
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, _file_name_from_url(url))
    if _cached(target, expected_sha1):
        return target
    timeout = _timeout_seconds(timeout)
    with _exclusive_lock(_lock_path(target)):
        # Another process may have finished this download while we waited.
        if _cached(target, expected_sha1):
            return target
        stale_sha1 = _discard_stale_copy(target)
        return _download_into(target, name, url, expected_sha1, timeout,
                              stale_sha1)


def download_all():
    """Download every data set registered in ``DATA_HUB``."""
    for name in DATA_HUB:
        download(name)


# --------------------------------------------------------------------------
# Extracting
# --------------------------------------------------------------------------

def _archive_stem(path):
    """Folder name for an archive: its file name without the archive suffix."""
    file_name = os.path.basename(path)
    for suffix in _ARCHIVE_SUFFIXES:
        if file_name.lower().endswith(suffix):
            return file_name[:-len(suffix)]
    raise ValueError(f'only zip and tar archives can be extracted, got '
                     f'{file_name!r}')


def _lands_inside(relative_path, destination):
    """True if ``destination/relative_path`` resolves inside destination."""
    root = os.path.realpath(destination)
    landing = os.path.realpath(os.path.join(root, relative_path))
    return os.path.commonpath([root, landing]) == root


def _check_member_path(member_name, destination, archive):
    """Refuse a member name that would land outside ``destination``."""
    normalised = member_name.replace('\\', '/')
    if (normalised.startswith('/') or re.match(r'^[A-Za-z]:', normalised)
            or '..' in normalised.split('/')
            or not _lands_inside(normalised, destination)):
        raise UnsafeArchiveError(
            f'refusing to extract member {member_name!r} of archive '
            f'{archive!r}: absolute paths and ".." components could write '
            f'outside the extraction folder; nothing was extracted')


def _check_tar_member(member, destination, archive):
    _check_member_path(member.name, destination, archive)
    if member.issym() or member.islnk():
        # A symlink's target is relative to the link's own folder, a hard
        # link's to the archive root; either must stay inside.
        base = posixpath.dirname(member.name) if member.issym() else ''
        link_target = posixpath.join(base, member.linkname)
        if (member.linkname.startswith('/')
                or not _lands_inside(link_target, destination)):
            raise UnsafeArchiveError(
                f'refusing to extract member {member.name!r} of archive '
                f'{archive!r}: it links to {member.linkname!r}, outside the '
                f'extraction folder; nothing was extracted')
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(
            f'refusing to extract member {member.name!r} of archive '
            f'{archive!r}: device files and pipes are not data')


def _extract_archive_into(archive, destination):
    """Check every member, then extract ``archive`` into ``destination``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member_name in zf.namelist():
                _check_member_path(member_name, destination, archive)
            zf.extractall(destination)
        return
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_tar_member(member, destination, archive)
            if hasattr(tarfile, 'data_filter'):
                # Python >= 3.11.4: also strip odd permissions/owners.
                tf.extractall(destination, members=members, filter='data')
            else:
                tf.extractall(destination, members=members)
        return
    raise ValueError(f'{archive!r} is neither a zip nor a tar archive')


def _marker_path(target):
    # The marker sits next to the folder, not inside it, so listing the data
    # folder shows only data.
    parent, name = os.path.split(target)
    return os.path.join(parent, f'.{name}{_EXTRACTED_MARKER_SUFFIX}')


def _read_marker(target):
    """Return (archive sha1, wrapped) from the marker, or (None, None).

    ``wrapped`` records whether the archive had its own top folder named
    like ``target``; it decides where d2l's ``folder`` argument points.
    """
    try:
        with open(_marker_path(target), encoding='utf-8') as f:
            fields = f.read().split()
    except FileNotFoundError:
        return None, None
    if len(fields) != 2:
        return None, None
    return fields[0], fields[1] == 'wrapped'


def _write_marker(target, archive_sha1, wrapped):
    with open(_marker_path(target), 'w', encoding='utf-8') as f:
        f.write(f'{archive_sha1} {"wrapped" if wrapped else "flat"}\n')


def _is_extracted(target, archive_sha1):
    return (os.path.isdir(target)
            and _read_marker(target)[0] == archive_sha1)


def _single_top_folder(folder, wanted_name):
    """``folder/wanted_name`` if it is the only entry of ``folder``."""
    entries = os.listdir(folder)
    candidate = os.path.join(folder, wanted_name)
    if entries == [wanted_name] and os.path.isdir(candidate):
        return candidate
    return None


def _move_aside_and_delete(path):
    """Remove an old folder; rename first so a crash never leaves it half."""
    if not os.path.lexists(path):
        return
    trash = tempfile.mkdtemp(dir=os.path.dirname(path), prefix='.trash-')
    os.replace(path, os.path.join(trash, 'old'))
    shutil.rmtree(trash, ignore_errors=True)


def _extract_once(archive, target):
    """Extract ``archive`` so that its content ends up as ``target``.

    The archive is unpacked into a temporary folder next to ``target`` and
    renamed into place only when complete; only then is a marker holding
    the archive's sha1 written.  A folder without a matching marker is
    treated as unfinished or stale and replaced.  Processes extracting the
    same archive take turns (see :func:`_exclusive_lock`), so none swaps
    the folder while another reads it.  Returns True if the archive's
    members were wrapped in a single top folder named like ``target`` (the
    usual layout, e.g. ``pokemon.zip`` -> ``pokemon/``).
    """
    archive_sha1 = sha1(archive)
    if _is_extracted(target, archive_sha1):
        return _read_marker(target)[1]
    with _exclusive_lock(_lock_path(target)):
        if _is_extracted(target, archive_sha1):
            # Another process finished the same extraction meanwhile.
            return _read_marker(target)[1]
        return _extract_into_place(archive, archive_sha1, target)


def _extract_into_place(archive, archive_sha1, target):
    """Unpack into a staging folder, rename it to ``target``, mark it done."""
    parent, stem = os.path.split(target)
    staging = tempfile.mkdtemp(dir=parent, prefix=f'.{stem}.extracting-')
    try:
        _extract_archive_into(archive, staging)
        top_folder = _single_top_folder(staging, stem)
        finished = top_folder if top_folder is not None else staging
        # Drop the marker first: from here on ``target`` is not trusted.
        _remove_quietly(_marker_path(target))
        _move_aside_and_delete(target)
        if top_folder is None:
            # The staging folder itself becomes the data folder; mkdtemp
            # made it private (0700), and the cache is shared data.
            os.chmod(staging, _FOLDER_MODE)
        try:
            os.replace(finished, target)
        except OSError:
            # Without file locks another process may have finished first.
            if _is_extracted(target, archive_sha1):
                return _read_marker(target)[1]
            raise
        _write_marker(target, archive_sha1, wrapped=top_folder is not None)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return top_folder is not None


def extract(filename, folder=None):
    """Extract a zip or tar(.gz) archive and return the extracted folder.

    The content goes to ``<folder>/<archive name without suffix>`` (folder
    defaults to the archive's own folder).  An archive whose members all
    sit in one top folder of that name (``pokemon.zip`` holding
    ``pokemon/...``) is not nested twice.  A second call with the same
    archive does nothing; a changed archive is extracted again.  Members
    with absolute paths or ``..`` are refused with
    :class:`UnsafeArchiveError` before anything is written.
    """
    folder = os.path.dirname(os.path.abspath(filename)) if folder is None \
        else folder
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(os.path.abspath(folder), _archive_stem(filename))
    _extract_once(filename, target)
    return target


def download_extract(name, folder=None):
    """Download a zip/tar archive (hub name or URL), extract it, return a path.

    Returns ``<cache>/<archive name without suffix>``, e.g.
    ``<cache>/pokemon`` for ``pokemon.zip``.  As in d2l, ``folder`` names a
    top-level folder inside the archive to return instead, e.g.
    ``download_extract('aclImdb', 'aclImdb')``.
    """
    archive = download(name)
    base_dir = os.path.dirname(archive)
    target = os.path.join(base_dir, _archive_stem(archive))
    wrapped = _extract_once(archive, target)
    if not folder:
        return target
    # d2l unpacks straight into the cache and joins ``folder`` to it; here a
    # wrapped archive's top folder *is* ``target``, a flat one lives inside.
    members_root = base_dir if wrapped else target
    return os.path.join(members_root, folder)


# The embedded data set ships inside the package and goes through the same path
# as a remote archive (URL, sha1 check, cache, extraction); see datasets/README.md.
EMBEDDED_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'datasets')
DATA_HUB['noto_emoji_64'] = (
    pathlib.Path(EMBEDDED_DATA_DIR, 'noto_emoji_64.zip').as_uri(),
    'a49f94e861c8f80b24a82bc7c35d93229b14fa7c')

# Fashion-MNIST (Zalando Research, MIT license), for the DCGAN chapter's
# exercise; read by d2l_shim.fashion_mnist.  The URLs are the ones listed in
# https://github.com/zalandoresearch/fashion-mnist#get-the-data (also used by
# torchvision).  Zalando and torchvision publish md5s only; these sha1s are
# the ones MXNet Gluon's FashionMNIST checks for its copies of the same four
# files, which it mirrors byte for byte (its MNIST sha1s are those other
# projects publish for the files at yann.lecun.com).  MXNet's copies can
# serve as a mirror; set D2L_DATA_MIRRORS to
# https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/fashion-mnist
FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
for _name, _file_name, _sha1 in (
        ('fashion_mnist_train_images', 'train-images-idx3-ubyte.gz',
         '0cf37b0d40ed5169c6b3aba31069a9770ac9043d'),
        ('fashion_mnist_train_labels', 'train-labels-idx1-ubyte.gz',
         '236021d52f1e40852b06a4c3008d8de8aef1e40b'),
        ('fashion_mnist_test_images', 't10k-images-idx3-ubyte.gz',
         '626ed6a7c06dd17c0eec72fa3be1740f146a2863'),
        ('fashion_mnist_test_labels', 't10k-labels-idx1-ubyte.gz',
         '17f9ab60e7257a1620f4ad76bbbaf857c3920701')):
    DATA_HUB[_name] = (FASHION_MNIST_URL + _file_name, _sha1)
del _name, _file_name, _sha1
