"""Files the commands write: atomically, politely, never over a device.

Every output (a generated module, a weights file, a set of ``.npy`` files)
is written to a temporary name in the destination's own directory and renamed
over the destination, so a reader sees the old file or the new one, never
half of one.  The rules:

* an existing destination that is not a regular file (a directory, a device
  such as ``/dev/null`` or ``/dev/full``, a FIFO, a socket) is refused: a
  rename would replace the device node with a regular file;
* a symlink is written *through*: the file it points to is replaced, the
  link stays;
* a new file gets the usual mode (0666 less the umask), a replaced file keeps
  its mode;
* no temporary file or directory survives any exit: errors, a full disk,
  ``KeyboardInterrupt``;
* a failure is a :class:`~derive.errors.SpecError` naming the destination
  (``file:1:1: error: cannot write …``), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from derive.errors import SpecError

__all__ = ["destination", "replace_directory", "write_atomic"]


def _fail(path: Path, why: str) -> SpecError:
    return SpecError(f"cannot write {path}: {why}", str(path), 1, 1)


def destination(path: str | Path, kind: str = "file") -> Path:
    """The file a write to ``path`` replaces: symlinks resolved, non-files refused.

    ``kind`` is ``"file"`` or ``"directory"`` (for :func:`replace_directory`).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _fail(path, exc.strerror or str(exc)) from None
    if st is not None:
        want = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
        if not want(st.st_mode):
            what = _kind_of(st.st_mode)
            raise _fail(
                path,
                f"it is {what}, not a {'directory' if kind == 'directory' else 'regular file'}",
            )
    parent = path.parent
    if not parent.is_dir():
        raise _fail(path, f"the directory {str(parent)!r} does not exist")
    return path


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


@contextlib.contextmanager
def _temporary(directory: Path, suffix: str) -> Iterator[tuple[Path, BinaryIO]]:
    """A new file in ``directory`` created with mode 0666 (the umask applies), removed on
    any exit unless the caller renamed it away."""
    while True:
        tmp = directory / f".{secrets.token_hex(6)}{suffix}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            yield tmp, f
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` (bytes, text as UTF-8, or a function writing to a binary file) to
    ``path`` through a temporary file and a rename (see the module doc for the rules)."""
    target = destination(path)
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        old_mode = None
    try:
        with _temporary(target.parent, target.suffix) as (tmp, f):
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
            if old_mode is not None:
                os.chmod(tmp, old_mode)
            os.replace(tmp, target)
    except OSError as exc:
        raise _fail(target, exc.strerror or str(exc)) from None


def replace_directory(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Replace the directory ``path`` by a new one that ``fill(tmp)`` fills, as a set.

    The new set is built in a temporary directory beside ``path``; then the
    old directory is renamed aside and the new one into place with SIGINT and
    SIGTERM held back, so an interrupted run leaves the old set or the new
    one at ``path``.  The old set is then removed.
    """
    target = destination(path, kind="directory")
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    old = target.parent / f".{target.name}.{secrets.token_hex(6)}.old"
    try:
        tmp.mkdir(mode=0o777)
        fill(tmp)
        with _signals_held():
            moved = target.exists()
            if moved:
                os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError:
                if moved:  # put the old set back
                    os.rename(old, target)
                raise
    except OSError as exc:
        raise _fail(target, exc.strerror or str(exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (delivered on exit) where the platform allows it."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
