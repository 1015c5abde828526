"""Finding image files in folders and pairing the files of several folders by name.

Files of different folders belong together when their paths relative to their folder agree
without the extension ("stem"): ``a/0001.png`` pairs with ``a/0001.jpg``.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from srunit._reading import folder_inside, path_kind, same_folder
from srunit.checks import locale_misread, one_line
from srunit.errors import ConfigError, DataError, shell_word
from srunit.runtime.run_folder import RunFolder

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_SCAN_HINT", "scan_images", "stem_key", "index_by_stem", "pair_by_stem",
           "walk_once", "link_into", "nested_folders", "refuse_nested_inputs"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)

DEFAULT_SCAN_HINT = (
    "pass --data.root DIR containing trainA/ and trainB/, or --data.dir_a/--data.dir_b"
)


def _sort_key(path: Path, root: Path) -> str:
    # Sorting on the POSIX relative path gives the same order on every OS and filesystem.
    return path.relative_to(root).as_posix()


def walk_once(root: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk` of ``root``, top-down, following symbolic links (datasets are often assembled from linked folders),
    each real folder once: a link loop ends, and a folder reached by two links is listed once. The caller may prune
    ``dirnames`` in place, as with os.walk."""
    visited: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in visited:
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        yield dirpath, dirnames, filenames


def _scanned_folders(dirpath: str, dirnames: list[str]) -> None:
    """Prune ``dirnames`` of one `walk_once` step as `scan_images` does: hidden folders and run folders are not
    entered (sorted: which of two links to one folder is entered is fixed)."""
    dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not RunFolder(Path(dirpath) / d).is_run())


def link_into(outer: str | os.PathLike[str], inner: str | os.PathLike[str]) -> Path | None:
    """The symbolic link below the folder ``outer`` through which `scan_images` of ``outer`` reaches the folder
    ``inner`` (or a folder inside it): the link itself, or a link to a folder that holds ``inner``; None where the
    scan never gets there through a link. `t/pred -> p` read p's images as t's, past a check of the paths alone."""
    root, target = Path(outer).expanduser(), os.path.realpath(Path(inner).expanduser())
    if not (root.is_dir() and os.path.isdir(target)):
        return None
    for dirpath, dirnames, _ in walk_once(root):
        _scanned_folders(dirpath, dirnames)
        if dirpath != str(root) and Path(os.path.realpath(dirpath)).is_relative_to(target):
            step = root
            for part in Path(dirpath).relative_to(root).parts:
                step = step / part
                if step.is_symlink():
                    return step
            dirnames[:] = []  # inside ``inner`` without a link: `folder_inside` says so
    return None


def nested_folders(first: str | os.PathLike[str], first_name: str, second: str | os.PathLike[str],
                   second_name: str) -> str | None:
    """"OUTER_NAME OUTER holds INNER_NAME INNER (...)" where a scan of one of two folders (`scan_images`: their
    sub-folders, links followed) reads the other's files too: it lies inside, or a link inside leads into it or
    to a folder that holds it; else None. One folder twice is not nested (`same_folder`)."""
    pairs = (((first, first_name), (second, second_name)), ((second, second_name), (first, first_name)))
    for (inner, inner_name), (outer, outer_name) in pairs:
        if folder_inside(inner, outer):
            return (f"{outer_name} {one_line(str(outer))} holds {inner_name} {one_line(str(inner))} (folders are "
                    f"read with their sub-folders)")
    if same_folder(first, second):
        return None
    for (inner, inner_name), (outer, outer_name) in pairs:
        link = link_into(outer, inner)
        if link is not None:
            return (f"{outer_name} {one_line(str(outer))} holds {inner_name} {one_line(str(inner))} (through the "
                    f"link {one_line(str(link))}, which points to {one_line(os.path.realpath(link))}: folders are "
                    f"read with their sub-folders, links followed; remove the link or move it out)")
    return None


def refuse_nested_inputs(inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """ConfigError where one of the input folders ``inputs`` ((option, folder), None where not given) lies inside
    another, or holds a link into it: `data split --images-a A --images-b A/B` listed A/B's images as --images-a
    files without a --labels partner, and advised removing them, which deleted domain B. Shared by the data
    commands and their API."""
    given = [(option, folder) for option, folder in inputs if folder is not None]
    for i, (first_option, first) in enumerate(given):
        for second_option, second in given[i + 1:]:
            nested = nested_folders(first, first_option, second, second_option)
            if nested is not None:
                raise ConfigError(f"{nested}, so the inner one's files would be read as the outer one's too; give "
                                  f"each input its own folder, neither inside another (nothing was written)")


def check_readable_folder(folder: Path, role: str, *, inside: Path | None = None) -> None:
    """DataError unless ``folder`` can be listed and entered: one that cannot was named by the first file looked
    for in it (`ur/sub/config.yaml: Permission denied`, a file the user never had). ``role`` begins the message;
    ``inside``: the folder given, out of which the folder can be moved instead."""
    try:
        os.listdir(folder)
        os.stat(os.path.join(folder, os.curdir))  # entering it: its search permission
    except (PermissionError, NotADirectoryError) as err:
        way = f" or move it out of {inside}" if inside is not None else ""
        raise DataError(f"{role}: the folder {folder} cannot be read ({err.strerror}); give yourself read permission "
                        f"(chmod u+rx {shell_word(folder)}){way}") from None


def scan_images(folder: str | Path, role: str, *, hint: str = "check the path",
                hidden: list[Path] | None = None) -> list[Path]:
    """List all image files below ``folder`` (recursively), in a deterministic sorted order.

    Files are matched on their extension (case-insensitive, see ``IMAGE_EXTENSIONS``).
    Hidden files and anything inside hidden folders (name starting with ".") are skipped, and so are
    files that are not regular files (FIFOs, devices), and run folders (`RunFolder.is_run`: a run trained
    into the data folder: its sample grids are not data). Symbolic links are followed, each real folder
    once: a link loop ends, and a folder reached by two links is listed once.

    Args:
        folder: the folder to scan.
        role: a human description used in error messages, e.g. "domain A (data.root/trainA)".
        hint: how the user can fix a wrong folder; appended to error messages.
        hidden: if given, the skipped hidden entries are appended to it: image files whose name starts
            with "." and hidden folders (not entered), so a summary can count them.

    Raises:
        DataError: the folder does not exist, is not a folder, is a run folder, or holds no image files.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"{role} folder {root} does not exist; {hint}")
    if not root.is_dir():
        raise DataError(f"{role} path {root} is {path_kind(root)}, not a folder; {hint}")
    check_readable_folder(root, role)
    if RunFolder(root).is_run():
        raise DataError(f"{role} folder {root} is a run folder of srunit train (config.yaml and checkpoints), not "
                        f"a folder of images; {hint}")
    found: list[Path] = []
    other: list[Path] = []  # files of other extensions: passed over, and said so
    for dirpath, dirnames, filenames in walk_once(root):
        if hidden is not None:
            hidden.extend(Path(dirpath) / d for d in sorted(dirnames) if d.startswith("."))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # sorted: which link wins is fixed
        for d in dirnames:  # os.walk passes over one it cannot read without a word
            check_readable_folder(Path(dirpath) / d, role, inside=root)
        runs = [d for d in dirnames if RunFolder(Path(dirpath) / d).is_run()]
        if runs:
            log.warning("%s: skipping the run folder(s) %s inside it (a run's samples are not data)", role,
                        ", ".join(str(Path(dirpath) / d) for d in runs))
        _scanned_folders(dirpath, dirnames)  # what `nested_folders` follows too
        for name in filenames:
            if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                if not name.startswith("."):
                    other.append(Path(dirpath) / name)
                continue
            if name.startswith("."):
                if hidden is not None:
                    hidden.append(Path(dirpath) / name)
                continue
            path = Path(dirpath) / name
            # Only regular files (or links to them): a FIFO or device named .png would block a reader.
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:  # a dangling link: reported as unreadable by whoever opens it
                regular = True
            if regular:
                found.append(path)
    _refuse_undecodable_names(found, root, role)
    if other and found:  # a folder of phone pictures (.heic) was read in part without a word
        other.sort(key=lambda p: _sort_key(p, root))
        log.warning("%s: %d file(s) of other extensions passed over (e.g. %s); srunit reads %s", role, len(other),
                    one_line(str(other[0])), " ".join(sorted(IMAGE_EXTENSIONS)))
    if not found:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(
            f"{role} folder {root} contains no image files (looked for extensions {exts}, "
            f"any case, in all subfolders); put the images there or {hint}"
        )
    found.sort(key=lambda p: _sort_key(p, root))
    return found


def _refuse_undecodable_names(files: Sequence[Path], root: Path, role: str) -> None:
    """File names are text everywhere srunit writes them (output names, records, reports, the terminal): a name
    whose bytes are not UTF-8 (Python holds them as lone surrogates) is refused here, naming its bytes."""
    bad = []
    for path in files:
        relative = os.path.relpath(path, root)
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:
            bad.append(os.fsencode(relative))
    if bad:
        shown = ", ".join(repr(name) for name in bad[:3]) + (", ..." if len(bad) > 3 else "")
        if misread := locale_misread(bad[0]):
            raise DataError(f"{role} folder {root} holds {len(bad)} file name(s) this Python cannot decode: {shown}; "
                            f"{misread}")
        raise DataError(f"{role} folder {root} holds {len(bad)} file name(s) that are not valid UTF-8: {shown}; "
                        f"rename them to UTF-8 names (for example with convmv -f latin1 -t utf-8 -r --notest FOLDER)")


def stem_key(path: Path, root: Path) -> str:
    """The pairing key of ``path`` below ``root``: its relative POSIX path without extension."""
    return path.relative_to(root).with_suffix("").as_posix()


def index_by_stem(files: Iterable[Path], root: Path, role: str) -> dict[str, Path]:
    """Map each file's ``stem_key`` to the file.

    Raises:
        DataError: two files share a stem (``a.png`` and ``a.jpg``), naming both and the fix.
    """
    by_key: dict[str, Path] = {}
    for f in files:
        key = stem_key(f, root)
        if key in by_key:
            raise DataError(f"{role} folder {root} holds two files with the name stem {key!r}: "
                            f"{by_key[key]} and {f}; remove or rename one so files pair unambiguously")
        by_key[key] = f
    return by_key


def pair_by_stem(*groups: tuple[Sequence[Path], Path, str]) -> list[tuple[Path, ...]]:
    """Pair the files of several folders by ``stem_key``; every file must have a partner in every folder.

    Args:
        groups: (files, folder, role) per folder, e.g. ``(scan_images(d, "prediction"), d, "prediction")``.

    Returns:
        One tuple per stem, sorted by stem, holding the file of each folder in the order of ``groups``.

    Raises:
        DataError: two files of one folder share a stem, or a file has no partner; the message names
            the file(s) and the fix. Nothing is skipped silently.
    """
    maps = [index_by_stem(files, root, role) for files, root, role in groups]
    first, (_, first_root, first_role) = maps[0], groups[0]
    for other, (_, other_root, other_role) in zip(maps[1:], groups[1:]):
        for src, dst, src_role, dst_role, dst_root in ((first, other, first_role, other_role, other_root),
                                                       (other, first, other_role, first_role, first_root)):
            missing = sorted(k for k in src if k not in dst)
            if missing:
                shown = ", ".join(str(src[k]) for k in missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise DataError(f"{len(missing)} {src_role} file(s) have no {dst_role} partner with the same name "
                                f"stem in {dst_root}: {shown}; add the missing files or remove these")
    return [tuple(m[k] for m in maps) for k in sorted(first)]
