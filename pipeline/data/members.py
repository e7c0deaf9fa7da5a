"""Archive member names, checked in one place before a reader trusts them (Reuters tar, THUCNews zip).

Every member, read or not: its name is valid UTF-8, not absolute, has no `..` component and occurs
once (a leading `./` is ignored). A member the reader would take as a document (`Layout.document`)
must sit exactly where the corpus puts its documents (`Layout.valid`), all under one root folder.
Anything else is one error naming the member: a hostile or repacked archive never adds, drops or
duplicates documents silently. The names seen are kept in a set (~130 MB for THUCNews.zip's 836k).

A member's bytes are read in bounded memory: at most `MEMBER_CAP` per member (`read_capped` for tar
members, `zipstream.read_member` for zip ones); a member that inflates past it is one error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from pipeline.errors import TextbenchError

T = TypeVar("T")
_DRIVE = re.compile(r"^[A-Za-z]:")
MEMBER_CAP = 64 << 20  # bytes one archive member may inflate to (a corpus document or SGML file is far smaller)


@dataclass(frozen=True)
class Layout:
    """Where a corpus keeps its documents: `valid` has a `root` group (None = the archive root)."""

    document: re.Pattern  # a name the reader would read as a document
    valid: re.Pattern  # the full name such a document must have
    expected: str  # `valid` in words, for the error


def checked(members: Iterable[tuple[str, T]], archive: str, layout: Layout) -> Iterator[tuple[str, T]]:
    """Yield (name without a leading `./`, payload) for every member; an error at the first bad name."""
    seen: set[str] = set()
    root: tuple[str | None, str] | None = None  # (root folder, the member that fixed it)
    for raw, payload in members:
        name = raw.removeprefix("./")
        why = _bad_name(name) or ("appears twice" if name in seen else "")
        if not why and layout.document.search(name):
            m = layout.valid.fullmatch(name)
            if m is None:
                why = f"is not where the corpus keeps its documents ({layout.expected})"
            elif root is None:
                root = (m["root"], name)
            elif m["root"] != root[0]:
                why = f"is under a different root folder than {shown(root[1])}"
        if why:
            raise TextbenchError(
                f"{archive}: member {shown(raw)} {why}; this archive was not packed as the corpus "
                "is: download it again, or repack it without that member"
            )
        seen.add(name)
        yield name, payload


def read_capped(stream: BinaryIO, archive: str, name: str) -> bytes:
    """All of `stream` (one member's bytes), refused past MEMBER_CAP without reading further."""
    data = stream.read(MEMBER_CAP + 1)
    if len(data) > MEMBER_CAP:
        raise too_large(archive, name)
    return data


def too_large(archive: str, name: str) -> TextbenchError:
    return TextbenchError(
        f"{archive}: member {shown(name)} inflates past {MEMBER_CAP} bytes (the per-member cap); "
        "no corpus document is that large: this archive was not packed as the corpus is, download it again"
    )


def _bad_name(name: str) -> str:
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        return "has a name that is not valid UTF-8"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "has an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "has a '..' component"
    return ""


def shown(name: str) -> str:
    """`name` on one line: undecodable bytes as \\xNN, control characters escaped."""
    return "".join(
        f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c if c.isprintable() else repr(c)[1:-1]
        for c in name
    )
