"""A RECORD read without installer (recordfile.py) gives installer's rows, and refuses
what installer refuses."""

from __future__ import annotations

import io

import pytest
from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file

from carton_hook.formats.recordfile import RecordError, parse_rows, record_row

ROWS = [
    "demo/__init__.py,sha256=AAAA,12\ndemo-1.0.dist-info/RECORD,,\n",
    '"demo/a,b.txt",sha256=abc_-,3\n"demo/""q"".txt",sha512=x,0\n',
    "demo\\win\\path.py,sha256=x,1\n",
    "demo/x.py,sha256=a=b,+7\n",
    "demo/x.py,,\n\n",
    "demo/x.py,sha256=abc\n",
    "demo/x.py,sha256=abc,1,extra\n",
    ",sha256=abc,1\n",
    "demo/x.py,sha256,1\n",
    "demo/x.py,nosuch=abc,1\n",
    "demo/x.py,sha256=abc,ten\n",
    "demo/x.py,sha256=abc, 1_000\n",
    "a\x0bb,sha256=abc,1\n",
    '"unterminated,sha256=abc,1\n',
]


def installers(text: str) -> list[tuple[str, str | None, int | None]] | str:
    try:
        rows = list(parse_record_file(text.splitlines()))
        entries = [RecordEntry.from_elements(*row) for row in rows]
    except InvalidRecordEntry:
        return "refused"
    return [(e.path, None if e.hash_ is None else str(e.hash_), e.size) for e in entries]


def ours(text: str) -> list[tuple[str, str | None, int | None]] | str:
    try:
        entries = [record_row(*row) for row in parse_rows(text)]
    except RecordError:
        return "refused"
    return [(e.path, None if e.hash_ is None else str(e.hash_), e.size) for e in entries]


@pytest.mark.parametrize("text", ROWS)
def test_rows_are_read_as_installer_reads_them(text: str) -> None:
    assert ours(text) == installers(text)


def test_a_row_validates_a_stream_as_installers_does() -> None:
    good = "demo/x.py,sha256=LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564,3\n"
    for text, data in ((good, b"foo"), (good, b"fooo"), (good, b"bar")):
        ([row],) = [parse_rows(text)]
        entry = RecordEntry.from_elements(*row)
        assert record_row(*row).validate_stream(io.BytesIO(data)) == entry.validate_stream(
            io.BytesIO(data))
