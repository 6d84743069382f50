"""The data loader: names, types, pinned hashes, local folder and download."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from dataclasses import replace

import pandas as pd
import pytest

from course_utils import data
from conftest import SHARED_DATA, needs_data


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_data
def test_mlm_is_the_pinned_225_row_version():
    mlm = data.load("mlm")
    assert mlm.shape == (225, 6)
    assert list(mlm.columns) == ["id", "group", "time", "wave", "con", "dan"]
    assert mlm["id"].dtype == "int64" and mlm["group"].dtype == "string"
    assert mlm["id"].nunique() == 91
    assert mlm.groupby("id").size().value_counts().to_dict() == {2: 54, 3: 31, 4: 6}
    assert mlm["con"].mean() == pytest.approx(0.1910387, abs=1e-7)


@needs_data
def test_trolley_ids_are_quoted_strings_with_the_separator_inside():
    trolley = data.load("Trolley")  # names are case-insensitive
    assert trolley.shape == (9930, 12)
    assert trolley["id"].dtype == "string"
    assert trolley["id"].iloc[0] == "96;434"
    assert trolley["id"].nunique() == 331
    assert sorted(trolley["response"].unique()) == list(range(1, 8))
    assert trolley["edu"].iloc[0] == "Middle School"


@needs_data
def test_chimpanzees_keep_missing_recipients_as_na():
    chimps = data.load("chimpanzees")
    assert chimps.shape == (504, 8)
    assert chimps["recipient"].dtype == "Int64"
    assert chimps["recipient"].isna().sum() == 252
    assert chimps["pulled_left"].mean() == pytest.approx(0.5793651, abs=1e-7)


def test_unknown_name_lists_the_choices():
    with pytest.raises(KeyError, match="chimpanzees.*mlm.*trolley"):
        data.load("iris")


@needs_data
def test_wrong_hash_in_local_folder_names_file_and_both_hashes(tmp_path, monkeypatch):
    tampered = tmp_path / "mlm.csv"
    tampered.write_bytes((SHARED_DATA / "mlm.csv").read_bytes().replace(b"0.1929", b"0.1930", 1))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataHashError) as err:
        data.load("mlm")
    message = str(err.value)
    assert str(tampered) in message
    assert sha256(tampered) in message
    assert data.DATASETS["mlm"].sha256 in message


def test_missing_file_in_local_folder_says_which(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="has no chimpanzees.csv"):
        data.load("chimpanzees")


@needs_data
def test_missing_column_is_named(tmp_path, monkeypatch):
    frame = pd.read_csv(SHARED_DATA / "mlm.csv").drop(columns="con")
    frame.to_csv(tmp_path / "mlm.csv", index=False)
    pinned = replace(data.DATASETS["mlm"], sha256=sha256(tmp_path / "mlm.csv"))
    monkeypatch.setitem(data.DATASETS, "mlm", pinned)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['con'\]"):
        data.load("mlm")


@pytest.fixture
def web_server(tmp_path):
    """Serve a folder over HTTP on localhost, as the pinned URLs are served."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@needs_data
def test_download_is_checked_and_reused(web_server, tmp_path, monkeypatch):
    served, url = web_server
    shutil.copy(SHARED_DATA / "mlm.csv", served / "mlm.csv")
    monkeypatch.setitem(data.DATASETS, "mlm", replace(data.DATASETS["mlm"], url=f"{url}/mlm.csv"))
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("COURSE_DOWNLOAD_DIR", str(tmp_path / "downloads"))
    assert data.load("mlm").shape == (225, 6)
    assert (tmp_path / "downloads" / "mlm.csv").is_file()
    (served / "mlm.csv").unlink()  # a second load must not need the server
    assert data.load("mlm").shape == (225, 6)


@needs_data
def test_download_with_wrong_hash_is_refused(web_server, tmp_path, monkeypatch):
    served, url = web_server
    (served / "mlm.csv").write_bytes((SHARED_DATA / "mlm.csv").read_bytes()[:-20])
    monkeypatch.setitem(data.DATASETS, "mlm", replace(data.DATASETS["mlm"], url=f"{url}/mlm.csv"))
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("COURSE_DOWNLOAD_DIR", str(tmp_path / "downloads"))
    with pytest.raises(data.DataHashError) as err:
        data.load("mlm")
    message = str(err.value)
    assert "mlm.csv" in message
    assert data.DATASETS["mlm"].sha256 in message
    assert sha256(served / "mlm.csv") in message
    assert not (tmp_path / "downloads" / "mlm.csv").exists()


def test_every_pinned_url_is_a_commit_not_a_branch():
    for ds in data.DATASETS.values():
        commit = ds.url.split("/")[5]
        assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit), ds.url
