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
        ``http://intranet/d2l/pokemon.zip``.
    ``D2L_DOWNLOAD_TIMEOUT``
        Seconds to wait for a server before giving up (default 60).
    ``CI``
        When set, no progress bar is shown.

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
import urllib.error
import urllib.parse
import urllib.request
import zipfile

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
    mirrors = [base.rstrip('/') + '/' + file_name for base in _mirror_bases()]
    return mirrors + [url]


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


def _show_progress(total_bytes):
    return (total_bytes is not None and total_bytes > PROGRESS_BAR_MIN_BYTES
            and not os.environ.get('CI'))


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------

class _SourceFailed(Exception):
    """One candidate URL failed; ``reason`` says why in a few words."""

    def __init__(self, url, reason, actual_sha1=None):
        super().__init__(f'{url}: {reason}')
        self.url = url
        self.reason = reason
        self.actual_sha1 = actual_sha1


def _describe_network_error(err, timeout):
    """A short human reason for a urllib / socket / http.client error."""
    if isinstance(err, urllib.error.HTTPError):
        return f'HTTP error {err.code} {err.reason}'
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f'no answer within {timeout:g} s (timed out)'
    if isinstance(reason, ConnectionRefusedError):
        return 'connection refused'
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
        return temp_path, digest
    except BaseException:
        _remove_quietly(temp_path)
        raise


def _copy_response(url, out, file_name, timeout):
    """Copy the body of ``url`` into ``out``; return its sha1 hex digest."""
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
        raise _SourceFailed(url, _describe_network_error(err, timeout)) \
            from err
    if total is not None and received != total:
        raise _SourceFailed(url, f'connection closed after {received} of '
                                 f'{total} bytes')
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


def _failure_message(name, file_name, target, expected_sha1, failures):
    """One paragraph: what failed, where, and what the user can do."""
    tried = '; '.join(str(failure) for failure in failures)
    mismatches = [f for f in failures if f.actual_sha1 is not None]
    if mismatches and len(mismatches) == len(failures):
        update_hint = (f'register its sha1 in DATA_HUB[{name!r}]'
                       if name in DATA_HUB else
                       'pass its sha1 as the sha1_hash argument')
        return (
            f'Data set {name!r}: the file {file_name!r} was downloaded but '
            f'its content is not the expected one ({tried}). The transfer '
            f'may have been corrupted or the file changed upstream; nothing '
            f'was saved. Try again later, or get a copy with sha1 '
            f'{expected_sha1} and place it at {target!r}. If you trust the '
            f'new file, {update_hint}.')
    hash_hint = f' (its sha1 must be {expected_sha1})' if expected_sha1 else ''
    return (
        f'Could not download data set {name!r} (file {file_name!r}). '
        f'Tried: {tried}. If this machine has no internet access, fetch the '
        f'file elsewhere and place it by hand at {target!r}{hash_hint}, or '
        f'set the environment variable {MIRRORS_ENV} to base URLs (separated '
        f'by spaces or commas) that serve {file_name!r}; they are tried in '
        f'order before the original URL.')


def _cached(path, expected_sha1):
    """True if ``path`` holds a usable copy.

    Without an expected hash any existing file counts: files only ever
    appear under their final name once complete (see :func:`download`).
    """
    if not os.path.isfile(path):
        return False
    return not expected_sha1 or sha1(path) == expected_sha1.lower()


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

    A cached file with the right sha1 is returned at once; one with a wrong
    sha1 is fetched again.  The data is streamed into a temporary file in
    ``folder``, its sha1 is checked after the transfer, and only then is it
    renamed to the final name, so an interrupted or corrupted download never
    looks like a cached file.  Raises :class:`DownloadError` if no source
    delivered the file.
    """
    name, url, expected_sha1 = _resolve_source(url, sha1_hash)
    folder = data_root() if folder is None else folder
    os.makedirs(folder, exist_ok=True)
    file_name = _file_name_from_url(url)
    target = os.path.join(folder, file_name)
    if _cached(target, expected_sha1):
        return target

    timeout = _timeout_seconds(timeout)
    failures = []
    for candidate in _candidate_urls(url):
        try:
            temp_path = _fetch_verified(candidate, folder, file_name,
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
                                         expected_sha1, failures)) \
        from failures[-1].__cause__


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
    treated as unfinished or stale and replaced.  Returns True if the
    archive's members were wrapped in a single top folder named like
    ``target`` (the usual layout, e.g. ``pokemon.zip`` -> ``pokemon/``).
    """
    parent, stem = os.path.split(target)
    archive_sha1 = sha1(archive)
    if _is_extracted(target, archive_sha1):
        return _read_marker(target)[1]

    staging = tempfile.mkdtemp(dir=parent, prefix=f'.{stem}.extracting-')
    try:
        _extract_archive_into(archive, staging)
        top_folder = _single_top_folder(staging, stem)
        finished = top_folder if top_folder is not None else staging
        if _is_extracted(target, archive_sha1):
            # Another process finished the same extraction meanwhile.
            return _read_marker(target)[1]
        # Drop the marker first: from here on ``target`` is not trusted.
        _remove_quietly(_marker_path(target))
        _move_aside_and_delete(target)
        try:
            os.replace(finished, target)
        except OSError:
            # Another process may have finished the same extraction first.
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
