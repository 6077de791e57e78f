"""Files: reading text as UTF-8 (errors name the file and line), checking an output folder can be made."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from deltaprompts.errors import UserError


def not_utf8(path: Path | str, line: int, data: bytes, at: int) -> UserError:
    """The one-line error for line `line` of `path`, whose bytes `data` stop being UTF-8 at offset `at`."""
    col = at - (data.rfind(b"\n", 0, at) + 1) + 1
    return UserError(f"{path}:{line}: not UTF-8 text (byte 0x{data[at:at + 1].hex()} at column {col}); "
                     "only UTF-8 text files are accepted")


def read_text(path: Path | str) -> str:
    """The file's text; raises UserError naming the file and line if it is not valid UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8(path, data.count(b"\n", 0, e.start) + 1, data, e.start) from None


def text_lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text file, read lazily; raises UserError naming the line that is not UTF-8."""
    with Path(path).open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise not_utf8(path, n, raw, e.start) from None


def check_out_dir(path: Path | str, what: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file, lies under a file, or cannot be written.

    Raises UserError naming `what` (the option or config key) and the path."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p} is a file; expected a folder (new, or one this command wrote)")
    parent = p
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise UserError(f"{what} {p}: {parent} is a file, so no folder can be made there")
    if not os.access(parent, os.W_OK | os.X_OK) or _read_only(parent):
        raise UserError(f"{what} {p}: {parent} is not writable; choose a folder you can write to")


def _read_only(path: Path) -> bool:
    """Whether `path` lies on a read-only file system (os.access says yes to root even there)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False
