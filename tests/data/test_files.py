"""srunit.data.files: scanning folders for images and pairing files of several folders by name stem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from srunit.data import IMAGE_EXTENSIONS, index_by_stem, pair_by_stem, scan_images, stem_key
from srunit.errors import DataError


def test_scan_missing_folder_names_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "trainA"
    with pytest.raises(DataError) as e:
        scan_images(missing, "domain A (data.root/trainA)")
    msg = str(e.value)
    assert str(missing) in msg and "does not exist" in msg and "domain A" in msg
    assert "--" not in msg, "the default advice names no option: every command that scans has its own"
    with pytest.raises(DataError, match="--data.root"):
        scan_images(missing, "domain A (data.root/trainA)", hint="check --data.root")


def test_scan_file_instead_of_folder(tmp_path: Path, write_image) -> None:
    f = write_image(tmp_path / "a.png")
    with pytest.raises(DataError, match="not a folder") as e:
        scan_images(f, "domain A")
    assert str(f) in str(e.value)


def test_scan_empty_and_non_image_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        scan_images(empty, "domain B")
    assert str(empty) in str(e.value) and ".png" in str(e.value) and ".jpg" in str(e.value)

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    (junk / "labels.csv").write_text("a,b")
    (junk / ".hidden.png").write_bytes(b"x")
    with pytest.raises(DataError, match="contains no image files") as e:
        scan_images(junk, "domain B")
    assert str(junk) in str(e.value)


def test_scan_recursive_sorted_case_insensitive(tmp_path: Path, write_image) -> None:
    root = tmp_path / "imgs"
    expected = [
        write_image(root / "a.PNG"),
        write_image(root / "b.jpeg"),
        write_image(root / "sub" / "c.Jpg"),
        write_image(root / "sub" / "deeper" / "d.bmp"),
        write_image(root / "z.TIF"),
    ]
    (root / "readme.txt").write_text("x")
    write_image(root / ".hidden.png")
    write_image(root / ".cache" / "e.png")
    assert scan_images(root, "domain A") == expected
    assert {".png", ".jpg", ".jpeg", ".webp", ".tiff"} <= IMAGE_EXTENSIONS


def test_scan_hint_is_the_fix_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape("input folder") + ".*" + re.escape("; pass --input DIR")):
        scan_images(tmp_path / "missing", "input", hint="pass --input DIR")


def _touch(*paths: Path) -> list[Path]:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return list(paths)


def test_stem_key_and_index_by_stem(tmp_path: Path) -> None:
    assert stem_key(tmp_path / "sub" / "0001.png", tmp_path) == "sub/0001"
    assert stem_key(tmp_path / "a.b.jpg", tmp_path) == "a.b"
    files = _touch(tmp_path / "a.png", tmp_path / "sub" / "a.jpg")
    assert index_by_stem(files, tmp_path, "label") == {"a": files[0], "sub/a": files[1]}
    twins = _touch(tmp_path / "x.png", tmp_path / "x.jpg")
    with pytest.raises(DataError) as e:
        index_by_stem(twins, tmp_path, "label")
    msg = str(e.value)
    assert f"label folder {tmp_path} holds two files with the name stem 'x'" in msg
    assert str(twins[0]) in msg and str(twins[1]) in msg and "remove or rename one" in msg


def test_pair_by_stem_three_groups(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    fa = _touch(a / "2.png", a / "1.png", a / "s" / "3.png")
    fb = _touch(b / "1.jpg", b / "2.jpg", b / "s" / "3.jpg")
    fc = _touch(c / "s" / "3.bmp", c / "2.bmp", c / "1.bmp")
    pairs = pair_by_stem((fa, a, "--labels"), (fb, b, "--images-a"), (fc, c, "--images-b"))
    assert pairs == [(a / "1.png", b / "1.jpg", c / "1.bmp"), (a / "2.png", b / "2.jpg", c / "2.bmp"),
                     (a / "s" / "3.png", b / "s" / "3.jpg", c / "s" / "3.bmp")]  # sorted by stem, group order kept
    # A file of the first folder without a partner in the third names that folder and the file.
    with pytest.raises(DataError) as e:
        pair_by_stem((fa, a, "--labels"), (fb, b, "--images-a"), (fc[:2], c, "--images-b"))
    msg = str(e.value)
    assert msg.startswith(f"1 --labels file(s) have no --images-b partner with the same name stem in {c}: ")
    assert str(a / "1.png") in msg and "add the missing files or remove these" in msg
    # An extra file in the third folder is reported the other way round.
    extra = _touch(c / "9.bmp")
    with pytest.raises(DataError, match=re.escape(f"1 --images-b file(s) have no --labels partner with the same "
                                                  f"name stem in {a}: {c / '9.bmp'}")):
        pair_by_stem((fa, a, "--labels"), (fb, b, "--images-a"), (fc + extra, c, "--images-b"))
    # Two files with one stem in any folder are refused, whatever the partners.
    twin = _touch(b / "1.png")
    with pytest.raises(DataError, match="--images-a folder .* two files with the name stem '1'"):
        pair_by_stem((fa, a, "--labels"), (fb + twin, b, "--images-a"), (fc, c, "--images-b"))


def test_pair_by_stem_lists_at_most_five_missing_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    fa = _touch(*(a / f"{i}.png" for i in range(7)))
    fb = _touch(b / "0.png")
    with pytest.raises(DataError) as e:
        pair_by_stem((fa, a, "prediction"), (fb, b, "target"))
    msg = str(e.value)
    assert msg.startswith("6 prediction file(s) have no target partner")
    assert str(a / "5.png") in msg and str(a / "6.png") not in msg and ", ..." in msg


def test_scan_survives_link_loops_and_skips_non_regular_files(tmp_path: Path, write_image) -> None:
    import os

    root = tmp_path / "imgs"
    a = write_image(root / "a.png")
    b = write_image(root / "sub" / "b.png")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)  # imgs/sub/loop -> imgs: a cycle
    (root / "again").symlink_to(root / "sub", target_is_directory=True)  # imgs/sub reached twice
    os.mkfifo(root / "pipe.png")  # opening it for reading would block forever
    (root / "dangling.png").symlink_to(tmp_path / "missing.png")  # kept: reported by whoever opens it
    found = scan_images(root, "domain A")
    # Each real folder once ("again" sorts before "sub", so it is the path that lists b.png).
    assert found == [a, root / "again" / "b.png", root / "dangling.png"]
    assert b not in found


def test_file_names_that_are_not_utf8_are_refused_naming_their_bytes(tmp_path: Path, write_image) -> None:
    import os

    write_image(tmp_path / "ok.png")
    write_image(Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.png"))))  # latin-1 bytes
    with pytest.raises(DataError, match=re.escape(r"holds 1 file name(s) that are not valid UTF-8: b'caf\xe9.png'; "
                                                  r"rename them")):
        scan_images(tmp_path, "input")
