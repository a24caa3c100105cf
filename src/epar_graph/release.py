"""Atomic releases: ``dist`` is a symbolic link to a complete release, switched by one rename.

A build writes its files into a new directory under ``.dist.releases/`` next
to ``dist``, flushes them to disk, and then replaces the link ``dist`` with a
link to it in a single ``rename``. Whenever the build is killed, ``dist`` is
either the old release or the new one, whole. The previous releases are kept
(:data:`KEEP`) so a server still reading one is not pulled from under, and the
query-store cache lives beside them (``.dist.releases/.store``), shared by all.

A ``dist`` that is still a plain directory (an older layout) is swapped for
the link atomically too, with Linux's ``renameat2(RENAME_EXCHANGE)``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from epar_graph.iris import Minter

#: The release's VoID/DCAT description; its dataset's ``void:uriSpace`` is the base the release was minted under.
VOID_FILE = "void.ttl"
#: Releases kept besides the current one (a running server may still read the one before).
KEEP = 2
STORE_CACHE = ".store"
_LOCK = ".lock"
_TMP = "tmp-"


#: The main N-Triples dump of a build, plain or compressed (``build --gzip``), in the order looked for.
DUMP_NAMES = ("epar.nt", "epar.nt.gz")


def find_dump(data_dir: Path) -> Path | None:
    """The main dump of a build directory (``epar.nt``, else ``epar.nt.gz``), or None when it has none.

    The build writes one of :data:`DUMP_NAMES`; the query command, the server and
    the link report all find it here, so a new name or order is one edit.
    """
    for name in DUMP_NAMES:
        path = data_dir / name
        if path.is_file():
            return path
    return None


class NotARelease(Exception):
    """``--out`` names something that is not a release: replacing it would destroy data."""


def releases_root(out: Path) -> Path:
    """Where the releases of ``out`` live: ``.dist.releases`` beside ``dist``."""
    return out.parent / f".{out.name}.releases"


def store_cache_dir(data_dir: Path) -> Path:
    """The query-store cache of a release directory: shared by all releases when ``data_dir`` is a link."""
    data_dir = Path(os.path.abspath(data_dir))
    if data_dir.is_symlink():
        return data_dir.resolve().parent / STORE_CACHE
    return data_dir / STORE_CACHE


def recorded_minter(release_dir: Path) -> Minter | None:
    """The IRI minter of the release in ``release_dir``, from the base its ``void.ttl`` records.

    ``None`` when there is no ``void.ttl`` (files that are not a release). The release's
    dataset is the one with both a ``uriSpace`` and a ``dataDump``: the datasets we link to
    carry a ``uriSpace`` but no dump, link sets a dump but no ``uriSpace``. Raises
    :class:`NotARelease` for a ``void.ttl`` that cannot be read or names no single base.
    """
    import pyoxigraph  # here, not at the top: `epar-graph --help` must stay light

    from epar_graph.namespaces import VOID

    path = Path(release_dir) / VOID_FILE
    if not path.is_file():
        return None
    spaces: dict[str, str] = {}
    dumped: set[str] = set()
    try:
        with open(path, "rb") as f:
            for t in pyoxigraph.parse(f, pyoxigraph.RdfFormat.TURTLE, base_iri=path.resolve().as_uri()):
                if t.predicate == VOID.uriSpace:
                    spaces[t.subject.value] = t.object.value
                elif t.predicate == VOID.dataDump:
                    dumped.add(t.subject.value)
        bases = {base for subject, base in spaces.items() if subject in dumped}
        if len(bases) == 1:
            return Minter(bases.pop())
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotARelease(f"{path} cannot be read ({exc})") from None
    which = "several bases" if bases else "no void:uriSpace"
    raise NotARelease(f"{path} names {which} for the dataset it dumps")


def check_replaceable(out: Path) -> None:
    """Refuse to replace anything but nothing, an empty directory, or an earlier release."""
    out = Path(os.path.abspath(out))
    if out.is_symlink():
        target = out.resolve()
        if target.parent != releases_root(out).resolve():
            raise NotARelease(f"{out} is a link to {target}, not to one of its releases: refusing to replace it")
        return
    if not out.exists():
        return
    if not out.is_dir():
        raise NotARelease(f"{out} exists and is not a directory")
    names = {p.name for p in out.iterdir()} - {STORE_CACHE}
    if names and "void.ttl" not in names:
        raise NotARelease(f"{out} is not empty and holds no earlier release (no void.ttl): refusing to replace it")


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One build at a time per release directory (a second waits)."""
    with open(root / _LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle(tree: Path) -> None:
    """Flush every file of the new release to disk and give it the permissions the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    for path in tree.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    os.chmod(tree, 0o777 & ~umask)  # mkdtemp makes it private
    _fsync_dir(tree)


def _clean_stale(root: Path, out: Path) -> None:
    """Leftovers of builds that were killed: half-written releases, unused links, the old layout's copies."""
    for path in root.glob(f"{_TMP}*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in out.parent.glob(f".{out.name}.link-*"):
        with contextlib.suppress(OSError):
            path.unlink()
    for path in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(path, ignore_errors=True)


def _prune(root: Path, current: Path) -> None:
    """Keep the current release and the :data:`KEEP` newest before it."""
    others = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", _TMP)) and p != current),
        key=lambda p: p.name,
        reverse=True,
    )
    for old in others[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system cannot."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            return False
        raise OSError(err, os.strerror(err), str(b))
    return True


def _switch(out: Path, release: Path) -> None:
    """Make ``out`` a link to ``release`` in one atomic step."""
    link = out.parent / f".{out.name}.link-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(os.path.relpath(release, out.parent), link)
    if out.is_dir() and not out.is_symlink():  # the older layout: a plain directory
        if _exchange(link, out):  # ``link`` now names the old directory: keep it as the oldest release
            link.rename(releases_root(out) / f"00000000T000000000000Z-legacy-{os.getpid()}")
        else:  # no atomic exchange here: keep the old copy until the link is in place
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            os.replace(link, out)
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(link, out)
    _fsync_dir(out.parent)


@contextlib.contextmanager
def release_dir(out: Path) -> Iterator[Path]:
    """A directory to write a release into; it becomes ``out`` only if the block completes."""
    out = Path(os.path.abspath(out))
    check_replaceable(out)
    root = releases_root(out)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        _clean_stale(root, out)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP, dir=root))
        try:
            yield tmp
            _settle(tmp)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            final = root / f"{stamp}-{os.getpid()}"
            tmp.rename(final)
            _fsync_dir(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _switch(out, final)
        _prune(root, final)
