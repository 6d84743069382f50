"""Read what a student left, in the grader's own processes, without trusting any of it.

A submission's folder and a sandbox's folder are the student's: besides notebooks they
can hold links (to the solutions, to ``/dev/zero``, to each other), folders, named pipes,
sockets and devices, under any name the grader looks for. Every file the grader reads
from them outside the sandbox goes through this module, which

- opens each component of a path without following links (``O_NOFOLLOW``, one
  directory at a time from a folder the grader made), so a link is refused wherever it
  stands, never read through;
- reads regular files only, judged on the open descriptor (``fstat``), so what is read
  is what was checked; a named pipe is opened with ``O_NONBLOCK`` and refused, never
  waited on;
- reads at most a stated number of bytes;
- lists folders with ``lstat`` (``os.scandir``), never descending into a link, and only
  so many entries.

A read that is refused raises :class:`Refused`, whose message is a sentence for the
student naming the file and what was wrong with it: what a student left is the
student's problem, never the grader's.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "Refused", "chunks", "entries", "fingerprint", "kind", "read_bytes", "read_json", "read_text",
           "real_folder", "sha256"]

#: Entries listed in one folder tree at most (a submission holds a handful).
MAX_ENTRIES = 10_000
#: Folder depth listed at most.
MAX_DEPTH = 16
_CHUNK = 2**20


class Refused(Exception):
    """A file the grader will not read; ``str(error)`` is the sentence the student reads."""


def _kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def kind(path: Path) -> str:
    """What ``path`` itself is, links not followed: file, folder, link, named pipe,
    socket, device, special file, or missing."""
    try:
        return _kind_of(os.lstat(path).st_mode)
    except OSError:
        return "missing"


def real_folder(path: Path) -> bool:
    """Whether ``path`` is a folder itself (not a link to one)."""
    return kind(path) == "folder"


def _refusal(name: str, what: str) -> Refused:
    article = "an" if what[0] in "aeiou" else "a"
    return Refused(f"{name} is {article} {what}, not a file, so the grader did not read it")


def _open(path: Path, within: Path | None) -> int:
    """A descriptor of ``path`` opened for reading, no link followed from ``within``
    (default: its own folder) down; raises :class:`Refused` or FileNotFoundError."""
    path = Path(path)
    base = Path(within) if within is not None else path.parent
    try:
        parts = path.relative_to(base).parts
    except ValueError:
        raise ValueError(f"{path} is not inside {base}") from None
    if not parts:
        raise _refusal(path.name, "folder")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(base, flags | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            shown = "/".join(parts[: i + 1])
            if last:  # judged before it is opened: opening a device or a pipe can act
                try:
                    mode = os.lstat(part, dir_fd=fd).st_mode
                except FileNotFoundError:
                    raise FileNotFoundError(errno.ENOENT, f"{shown} does not exist") from None
                if not stat.S_ISREG(mode):
                    raise _refusal(shown, _kind_of(mode))
            try:
                child = os.open(part, flags | (os.O_NONBLOCK if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EISDIR):
                    # ELOOP: a link (O_NOFOLLOW); ENOTDIR: not a folder on the way; ENXIO: a socket
                    try:
                        what = _kind_of(os.lstat(part, dir_fd=fd).st_mode)
                    except OSError:
                        what = "special file"
                    raise _refusal(shown, what) from None
                if error.errno == errno.ENOENT:
                    raise FileNotFoundError(errno.ENOENT, f"{shown} does not exist") from None
                raise Refused(f"{shown} could not be opened ({os.strerror(error.errno or 0)}), so the grader did "
                              "not read it") from None
            os.close(fd)
            fd = child
            info = os.fstat(fd)
            if not last and not stat.S_ISDIR(info.st_mode):
                raise _refusal(shown, _kind_of(info.st_mode))
        if not stat.S_ISREG(info.st_mode):
            raise _refusal("/".join(parts), _kind_of(info.st_mode))
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, limit: int, *, within: Path | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (more is
    refused), no link followed from ``within`` (default: the file's own folder) down.

    Raises :class:`Refused` (a link, folder, pipe, device, socket, or too large) or
    FileNotFoundError."""
    fd = _open(path, within)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise Refused(f"{Path(path).name} is larger than {_size(limit)}, so the grader did not read it")
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew while it was read
        raise Refused(f"{Path(path).name} is larger than {_size(limit)}, so the grader did not read it")
    return data


def read_text(path: Path, limit: int, *, within: Path | None = None) -> str:
    """:func:`read_bytes` as UTF-8 text (text that is not UTF-8 is refused)."""
    try:
        return read_bytes(path, limit, within=within).decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{Path(path).name} is not UTF-8 text, so the grader did not read it") from None


def read_json(path: Path, limit: int, *, within: Path | None = None):
    """:func:`read_text` parsed as JSON (JSON that does not parse is refused)."""
    try:
        return json.loads(read_text(path, limit, within=within))
    except (ValueError, RecursionError):
        raise Refused(f"{Path(path).name} is not valid JSON, so the grader did not read it") from None


def chunks(path: Path, limit: int, *, within: Path | None = None):
    """The bytes of the regular file ``path`` in chunks, as :func:`read_bytes` judges it
    (the limit is checked as the chunks come: a file that grows is refused)."""
    fd = _open(path, within)
    read = 0
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            read += len(chunk)
            if read > limit:
                raise Refused(f"{Path(path).name} is larger than {_size(limit)}, so the grader did not read it")
            yield chunk


def sha256(path: Path, limit: int, *, within: Path | None = None) -> str:
    """SHA-256 of the regular file ``path`` (at most ``limit`` bytes), read in chunks."""
    h = hashlib.sha256()
    for chunk in chunks(path, limit, within=within):
        h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """One thing in a folder tree, as :func:`entries` found it (links not followed)."""

    path: str  # relative to the folder listed, with "/"
    kind: str  # as :func:`kind` names it
    size: int
    target: str = ""  # a link's target, as written (never followed)


def entries(folder: Path, *, max_entries: int = MAX_ENTRIES, max_depth: int = MAX_DEPTH) -> list[Entry]:
    """Everything in the tree under ``folder`` (which must be a folder itself), sorted,
    without following a link or descending into one, at most ``max_entries`` entries and
    ``max_depth`` folders deep (more is refused). Entries that vanish while listed are
    left out; a folder that cannot be listed is an entry without contents."""
    if not real_folder(folder):
        raise _refusal(Path(folder).name, kind(folder))
    found: list[Entry] = []

    def walk(path: Path, prefix: str, depth: int) -> None:
        try:
            with os.scandir(path) as listing:
                items = sorted(listing, key=lambda e: e.name)
        except OSError:
            return
        for item in items:
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            what = _kind_of(info.st_mode)
            name = f"{prefix}{item.name}"
            target = ""
            if what == "link":
                try:
                    target = os.readlink(item.path)
                except OSError:
                    target = "?"
            found.append(Entry(name, what, info.st_size if what == "file" else 0, target))
            if len(found) > max_entries:
                raise Refused(f"{Path(folder).name} holds more than {max_entries} files and folders, so the grader "
                              "did not read it")
            if what == "folder":
                if depth >= max_depth:
                    raise Refused(f"{Path(folder).name} has folders more than {max_depth} deep, so the grader did "
                                  "not read it")
                walk(Path(item.path), f"{name}/", depth + 1)

    walk(Path(folder), "", 1)
    return found


def fingerprint(folder: Path, *, file_limit: int, max_entries: int = MAX_ENTRIES) -> str:
    """SHA-256 over everything in ``folder``: each entry's name and kind, a link's
    target as written, a regular file's bytes (a file larger than ``file_limit`` by its
    size alone). It changes when anything in the folder changes, and reads nothing but
    regular files inside it."""
    h = hashlib.sha256()
    for entry in entries(folder, max_entries=max_entries):
        h.update(f"{entry.path}\0{entry.kind}\0{entry.target}\0{entry.size}\0".encode("utf-8", "surrogateescape"))
        if entry.kind == "file" and entry.size <= file_limit:
            try:
                h.update(sha256(Path(folder) / entry.path, file_limit, within=folder).encode())
            except (Refused, OSError):  # changed while it was read: the name and size stand for it
                h.update(b"?")
    return h.hexdigest()


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit:,} bytes"
