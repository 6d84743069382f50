"""The course's data sets, loaded by name and checked against pinned hashes.

Each file is fetched from a pinned commit (never a branch, which can change under us)
and its SHA-256 is checked before it is parsed. A local folder can stand in for the
download: set ``COURSE_DATA_DIR`` to a folder holding the original CSV files (the
Makefile points it at ``../shared/data`` when that folder exists).

Example (not run here: it needs the data)::

    from course_utils.data import load
    mlm = load("mlm")
    mlm.shape  # (225, 6)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pooch

__all__ = ["DATASETS", "DataHashError", "load", "path"]

ENV_DATA_DIR = "COURSE_DATA_DIR"
ENV_DOWNLOAD_DIR = "COURSE_DOWNLOAD_DIR"

_RETHINKING = "https://raw.githubusercontent.com/rmcelreath/rethinking/d736033483e6443f0e35256dba22ba25d46a6284/data"


@dataclass(frozen=True)
class Dataset:
    """Where a data set lives, how to check it and how to parse it."""

    filename: str
    url: str
    sha256: str
    sep: str
    dtypes: dict
    rows: int


DATASETS: dict[str, Dataset] = {
    # Repeated measures of conscientiousness (the lecture's first example). The pinned
    # commit holds the 225-row file the lecture used; the branch now serves other data.
    "mlm": Dataset(
        filename="mlm.csv",
        url=(
            "https://raw.githubusercontent.com/sjweston/uobayes/"
            "5c0322774034f361a10bf306f9a53e49dad4a732/files/data/external_data/mlm.csv"
        ),
        sha256="6677a115469d57a8f565ccc4b214e8bcb97273b702b88db63a9db9d4c9b69616",
        sep=",",
        dtypes={
            "id": "int64",
            "group": "string",
            "time": "int64",
            "wave": "int64",
            "con": "float64",
            "dan": "float64",
        },
        rows=225,
    ),
    "chimpanzees": Dataset(
        filename="chimpanzees.csv",
        url=f"{_RETHINKING}/chimpanzees.csv",
        sha256="9a54ea2219fb013d45dfe38ca6dace254066e8985287548209967e0556612b5b",
        sep=";",
        dtypes={
            "actor": "int64",
            "recipient": "Int64",  # NA when no partner sat opposite
            "condition": "int64",
            "block": "int64",
            "trial": "int64",
            "prosoc_left": "int64",
            "chose_prosoc": "int64",
            "pulled_left": "int64",
        },
        rows=504,
    ),
    "trolley": Dataset(
        filename="Trolley.csv",
        url=f"{_RETHINKING}/Trolley.csv",
        sha256="4255f05e188831a03cd43a7de78ebf65f3ff9c14cf3302a8abd69530e826a13a",
        sep=";",
        dtypes={
            "case": "string",
            "response": "int64",
            "order": "int64",
            "id": "string",  # such as "96;434": quoted, and holds the separator
            "age": "int64",
            "male": "int64",
            "edu": "string",
            "action": "int64",
            "intention": "int64",
            "contact": "int64",
            "story": "string",
            "action2": "int64",
        },
        rows=9930,
    ),
}

_ALIASES = {"chimps": "chimpanzees"}


class DataHashError(ValueError):
    """A data file's SHA-256 is not the pinned one."""


def _dataset(name: str) -> Dataset:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[key]


def _check_hash(file: Path, expected: str) -> None:
    actual = pooch.file_hash(str(file), alg="sha256")
    if actual != expected:
        raise DataHashError(
            f"{file} has SHA-256 {actual}, but the course expects {expected}. "
            "The file is not the pinned original: delete it (a download will fetch it "
            "again) or point COURSE_DATA_DIR at a folder with the original files."
        )


def path(name: str) -> Path:
    """Return the local path of data set ``name``, verified against its pinned SHA-256.

    The file comes from ``$COURSE_DATA_DIR`` when that variable names a folder,
    otherwise it is downloaded once into ``$COURSE_DOWNLOAD_DIR`` (default: the user
    cache folder) and reused. Raises :class:`DataHashError` naming the file and both
    hashes when the content differs from the pinned original.
    """
    ds = _dataset(name)
    local_dir = os.environ.get(ENV_DATA_DIR)
    if local_dir:
        file = Path(local_dir) / ds.filename
        if not file.is_file():
            raise FileNotFoundError(
                f"{ENV_DATA_DIR}={local_dir} has no {ds.filename}; "
                f"unset {ENV_DATA_DIR} to download it from {ds.url}"
            )
        _check_hash(file, ds.sha256)
        return file

    download_dir = Path(os.environ.get(ENV_DOWNLOAD_DIR) or pooch.os_cache("multilevel-adventures"))
    try:
        fetched = pooch.retrieve(
            ds.url, known_hash=f"sha256:{ds.sha256}", fname=ds.filename, path=download_dir,
            progressbar=False,
        )
    except ValueError as err:  # pooch's hash mismatch: say it in the course's words
        if "hash" not in str(err).lower():
            raise
        raise DataHashError(f"{ds.filename} downloaded from {ds.url}: {err}") from err
    return Path(fetched)


def load(name: str) -> pd.DataFrame:
    """Load a course data set by name (``"mlm"``, ``"chimpanzees"`` or ``"trolley"``).

    Returns a DataFrame with the column types listed in :data:`DATASETS` (strings as
    pandas ``string``, counts and indicators as integers, ``NA`` as missing).
    """
    ds = _dataset(name)
    file = path(name)
    frame = pd.read_csv(file, sep=ds.sep, na_values=["NA"], keep_default_na=False)
    missing = [col for col in ds.dtypes if col not in frame.columns]
    if missing:
        raise ValueError(f"{file} lacks the column(s) {missing}; it has {list(frame.columns)}")
    return frame.astype(ds.dtypes)


def main() -> None:
    """Fetch (or find) every data set, check its hash and report it: ``python -m course_utils.data``."""
    for name, ds in DATASETS.items():
        frame = load(name)
        if len(frame) != ds.rows:
            raise ValueError(f"{ds.filename} has {len(frame)} rows, expected {ds.rows}")
        print(f"{ds.filename}: {len(frame)} rows, SHA-256 verified ({path(name)})")


if __name__ == "__main__":
    main()
