import hashlib

import pytest

from crawler.textfiles import text_file_name, write_text_file


@pytest.mark.parametrize(
    ("sequence", "prefix"),
    [(0, "000_"), (7, "007_"), (999, "999_"), (1000, "1000_"), (123456, "123456_")],
)
def test_file_names_are_sequence_and_url_hash(sequence, prefix):
    url = "https://www.dwn.example/politik/nato"
    name = text_file_name(sequence, url)
    assert name == f"{prefix}{hashlib.sha256(url.encode()).hexdigest()[:16]}.txt"


def test_file_names_never_come_from_the_url_path():
    assert "/" not in text_file_name(1, "https://x.example/../../etc/passwd")


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    target = write_text_file(tmp_path / "articles", "001_ab.txt", "Titel\nAbsatz")
    assert target.read_text(encoding="utf-8") == "Titel\nAbsatz\n"
    write_text_file(tmp_path / "articles", "001_ab.txt", "Titel\nNeuer Absatz\n")
    assert target.read_text(encoding="utf-8") == "Titel\nNeuer Absatz\n"
    assert [p.name for p in (tmp_path / "articles").iterdir()] == ["001_ab.txt"]


@pytest.mark.parametrize("name", ["../x.txt", "a/b.txt", ".hidden"])
def test_write_refuses_paths(tmp_path, name):
    with pytest.raises(ValueError):
        write_text_file(tmp_path, name, "x")
