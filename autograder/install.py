"""The grader's installed, read-only copy of its own code and reference.

``make grade`` does not run the checks from the checkout: before grading, the
``autograder`` and ``course_utils`` packages and the reference posterior are copied into
the grading state folder (``.grading/<assignment>/grader/<digest>/``), files made
read-only, and every process the grader starts (the checks, the trusted fits, the
students' sandboxed kernels, which see it read-only) imports from that copy, first on
``sys.path``. :func:`verify` recomputes its digest, so a copy changed after it was made
is noticed (the preflight refuses to grade with it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

__all__ = ["PACKAGES", "install", "digest", "verify"]

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autograder", "course_utils")


def _files(root: Path) -> list[Path]:
    found = []
    for package in PACKAGES:
        base = root / package
        found += [p for p in base.rglob("*.py") if "__pycache__" not in p.parts]
        found += list((base / "reference").glob("*.json")) if (base / "reference").is_dir() else []
    return sorted(found)


def digest(root: Path = ROOT) -> str:
    """SHA-256 over the grader's files under ``root`` (names and bytes)."""
    h = hashlib.sha256()
    for path in _files(root):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def install(target_root: Path, source: Path = ROOT) -> Path:
    """Copy the grader into ``target_root/<digest>`` (once) and return that folder."""
    name = digest(source)
    target = Path(target_root) / name[:16]
    if target.is_dir() and digest(target) == name:
        return target
    if target.exists():
        _writable(target)
        shutil.rmtree(target)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        _writable(tmp)
        shutil.rmtree(tmp)
    for path in _files(source):
        dest = tmp / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    for path in sorted(tmp.rglob("*"), reverse=True):
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
                                                                 if path.is_dir() else 0))
    tmp.chmod(0o555)
    os.replace(tmp, target)
    return target


def verify(target: Path) -> bool:
    """Whether an installed copy still holds exactly what it was made from."""
    return Path(target).is_dir() and digest(target).startswith(Path(target).name)


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
