"""scripts/loaders/files.py rule by rule, on real files in tmp_path: no warehouse, no CLI.

The CLI tests (test_bad_input.py, test_bad_files.py, ...) prove the same behaviour end to
end, a DuckDB load per case; these pin each rule on its own (the exact reject, offset,
line number, staged bytes), so a one-line change to files.py fails a test that names the
rule. With test_bulk_rules.py and test_orders_rules.py they are what `make mutate` runs
for the loaders area (benchmarks/mutation.md): a second for the three files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import stat
import zlib
from pathlib import Path

import pytest

from scripts.loaders import files
from scripts.loaders.files import (
    InputError,
    Reject,
    SourceFile,
    detect_shape,
    discover,
    inspect,
    iter_records,
    open_content,
    raw_text,
    stage_lines,
)

EXTENSIONS = (".ndjson", ".json")
# What CPython's gzip says when the stream ends before its end-of-stream marker.
GZIP_EOF = "Compressed file ended before the end-of-stream marker was reached"


def put(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def source(tmp_path: Path, content: bytes, name: str = "in.ndjson") -> SourceFile:
    return inspect(put(tmp_path / name, content))


# ------------------------------------------------------------------ discover
def test_discover__folders_keep_known_extensions_any_case_and_gz_only(tmp_path):
    for name in (
        "b.ndjson", "a.JSON", "c.ndjson.gz", "d.json.GZ", "e.csv", "f.gz", "g.ndjson.zip",
        ".hidden.ndjson", "h.ndjson.tmp", "i.ndjson.part", "j.ndjson.partial",
        "k.ndjson.open", "l.ndjson.inprogress", "m.ndjson.writing", "sub/n.ndjson",
        "sub/.o.json",
    ):  # fmt: skip
        put(tmp_path / "in" / name, b"{}\n")
    found = discover([tmp_path / "in"], EXTENSIONS).files
    root = (tmp_path / "in").resolve()
    assert found == [
        root / "a.JSON", root / "b.ndjson", root / "c.ndjson.gz", root / "d.json.GZ",
        root / "sub/n.ndjson",
    ]  # fmt: skip


def test_discover__a_named_file_counts_whatever_its_name_and_once(tmp_path):
    named = put(tmp_path / "in" / ".odd.txt.tmp", b"{}\n")
    other = put(tmp_path / "in" / "x.ndjson", b"{}\n")
    found = discover([str(named), tmp_path / "in", other], EXTENSIONS)
    assert found.files == [named.resolve(), other.resolve()]
    assert found.only_other_files == []  # the .tmp is named, so the folder is not bare


def test_discover__a_folder_with_only_other_files_is_noted(tmp_path):
    """A folder of `.zst` exports read 0 records and exited 0 without a word."""
    for name in ("a.ndjson.zst", "b.txt", ".hidden", "c.ndjson.part"):
        put(tmp_path / "in" / name, b"{}\n")
    found = discover([tmp_path / "in"], EXTENSIONS)
    assert found.files == []
    assert found.only_other_files == [(tmp_path / "in", 2)]


def test_discover__missing_path_is_a_usage_error_naming_it(tmp_path):
    with pytest.raises(InputError) as error:
        discover([str(tmp_path / "nope")], EXTENSIONS)
    assert str(error.value) == f"no such file or folder: {tmp_path / 'nope'}"


def test_discover__fifo_socket_and_device_are_refused_by_kind(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as error:
        discover([str(fifo)], EXTENSIONS)
    assert str(error.value) == f"not a regular file (a named pipe): {fifo}"

    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(InputError) as error:
            discover([str(sock_path)], EXTENSIONS)
    assert str(error.value) == f"not a regular file (a socket): {sock_path}"

    with pytest.raises(InputError) as error:
        discover(["/dev/null"], EXTENSIONS)
    assert str(error.value) == "not a regular file (a device): /dev/null"


def test_discover__block_device_is_a_device(tmp_path):
    block = tmp_path / "blk"
    try:
        os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except PermissionError:
        pytest.skip("creating a block device needs CAP_MKNOD")
    with pytest.raises(InputError) as error:
        discover([str(block)], EXTENSIONS)
    assert str(error.value) == f"not a regular file (a device): {block}"


# ------------------------------------------------------------------ inspect
def test_inspect__plain_file_identity_head_and_flags(tmp_path):
    content = b'{"a":1}\n{"b":2}\n'
    info = source(tmp_path, content)
    assert info.size == len(content)
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    assert info.gzipped is False
    assert info.head == content
    assert info.is_empty is False
    assert (info.has_cr, info.has_delimiter, info.has_bom) == (False, False, False)
    assert (info.utf8_error, info.gzip_error, info.truncation) == (None, None, None)
    assert info.readable_bytes is None
    assert info.content_bytes == len(content)
    assert info.fast_path_ok is True
    assert info.display == str(tmp_path / "in.ndjson")


def test_inspect__gzip_is_hashed_as_stored_and_checked_as_content(tmp_path):
    content = b'{"a":"\xc3\xa9"}\r\n'
    stored = gzip.compress(content)
    info = source(tmp_path, stored, "in.ndjson.GZ")
    assert info.gzipped is True
    assert info.size == len(stored)
    assert info.content_bytes == len(content)
    assert info.sha256 == hashlib.sha256(stored).hexdigest()
    assert info.head == content
    assert info.has_cr is True
    assert info.utf8_error is None
    assert info.fast_path_ok is False


def test_inspect__gzip_content_is_checked_for_utf8_whatever_its_size(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(files, "UTF8_CHECK_BYTES", 1)
    info = source(tmp_path, gzip.compress(b'{"a":"\xff"}\n'), "in.ndjson.gz")
    assert info.utf8_error == "invalid UTF-8 at byte 6"
    ended = source(tmp_path, gzip.compress(b'{"a":"\xc3'), "cut.ndjson.gz")
    assert ended.utf8_error == "file ends inside a UTF-8 sequence"


def test_inspect__whitespace_only_is_empty_and_empty_has_no_error(tmp_path):
    assert source(tmp_path, b"  \n\t\n").is_empty is True
    empty = source(tmp_path, b"", "empty.ndjson")
    assert (empty.is_empty, empty.size, empty.utf8_error) == (True, 0, None)
    assert empty.sha256 == hashlib.sha256(b"").hexdigest()
    assert source(tmp_path, b"\n\n1", "one.ndjson").is_empty is False


def test_inspect__cr_delimiter_and_bom_each_leave_the_fast_path(tmp_path):
    cr = source(tmp_path, b'{"a":1}\r{"b":2}\n', "cr.ndjson")
    assert (cr.has_cr, cr.has_delimiter, cr.fast_path_ok) == (True, False, False)
    unit = source(tmp_path, b'{"a":"\x1f"}\n', "us.ndjson")
    assert (unit.has_cr, unit.has_delimiter, unit.fast_path_ok) == (False, True, False)
    bom = source(tmp_path, files.BOM + b'{"a":1}\n', "bom.ndjson")
    assert (bom.has_bom, bom.fast_path_ok, bom.first_char) == (True, False, b"{")


def test_inspect__first_invalid_utf8_byte_is_reported_across_chunks(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(files, "CHUNK", 2)
    info = source(tmp_path, b"ab\xff\n\xfe")
    # chunks "ab", "\xff\n", "\xfe": the first bad byte is 2, not the later one at 4
    assert info.utf8_error == "invalid UTF-8 at byte 2"
    assert info.fast_path_ok is False


def test_inspect__a_sequence_cut_by_an_ascii_chunk_is_invalid_utf8(
    tmp_path, monkeypatch
):
    """An ASCII chunk skips decoding, but not after a chunk that ended inside a
    multi-byte sequence: `\\xc3` then `ab` is invalid at byte 2."""
    monkeypatch.setattr(files, "CHUNK", 3)
    info = source(tmp_path, b'{"\xc3ab\n')
    assert info.utf8_error == "invalid UTF-8 at byte 2"
    assert source(tmp_path, b'{"\xc3\xa9\n', "ok.ndjson").utf8_error is None


def test_inspect__head_is_the_first_64_kib_across_chunks(tmp_path, monkeypatch):
    content = bytes(range(32, 127)) * 1000  # 95,000 bytes, no newline
    monkeypatch.setattr(files, "CHUNK", 1000)
    info = source(tmp_path, content)
    assert info.head == content[: files.HEAD_BYTES]
    assert info.size == len(content)
    assert info.sha256 == hashlib.sha256(content).hexdigest()


def test_inspect__file_ending_inside_a_utf8_sequence(tmp_path):
    info = source(tmp_path, b'{"a":"\xc3')
    assert info.utf8_error == "file ends inside a UTF-8 sequence"


@pytest.mark.parametrize("limit_offset", [0, -1])
def test_inspect__utf8_checked_up_to_the_size_limit_then_left_to_duckdb(
    tmp_path, monkeypatch, limit_offset
):
    content = b'{"a":"\xff"}\n'
    monkeypatch.setattr(files, "UTF8_CHECK_BYTES", len(content) + limit_offset)
    info = source(tmp_path, content)
    expected = "invalid UTF-8 at byte 6" if limit_offset == 0 else None
    assert info.utf8_error == expected
    # Unchecked, a file ending mid-sequence is not flagged either.
    monkeypatch.setattr(files, "UTF8_CHECK_BYTES", 3)
    assert source(tmp_path, b'{"a":"\xc3', "cut.ndjson").utf8_error is None


def test_inspect__unreadable_gzip(tmp_path):
    info = source(tmp_path, b"not gzip at all\n", "x.ndjson.gz")
    assert info.gzip_error == "not a readable gzip file: Not a gzipped file (b'no')"
    assert info.truncation is None
    assert info.fast_path_ok is False


def test_inspect__corrupt_deflate_data_is_unreadable_gzip(tmp_path):
    stored = bytearray(gzip.compress(b'{"a":1}\n' * 50))
    stored[12:20] = b"\xff" * 8  # inside the deflate stream
    info = source(tmp_path, bytes(stored), "x.ndjson.gz")
    with pytest.raises(zlib.error) as expected:
        gzip.decompress(bytes(stored))
    assert info.gzip_error == f"not a readable gzip file: {expected.value}"


@pytest.mark.parametrize("chunk", [files.CHUNK, 3])
def test_inspect__truncated_gzip_keeps_complete_lines_and_one_reject(
    tmp_path, monkeypatch, chunk
):
    monkeypatch.setattr(files, "CHUNK", chunk)
    content = b'{"a":1}\n{"b":2}\n{"c":3'
    stored = gzip.compress(content)[:-8]  # the CRC and size trailer never arrived
    info = source(tmp_path, stored, "cut.ndjson.gz")
    assert info.truncation == Reject(
        3,
        files.TRUNCATED_GZIP,
        f"{GZIP_EOF} after {len(content)} bytes of content; 2 complete lines were "
        "read, the rest is missing",
        '{"c":3',
    )
    assert info.readable_bytes == len(b'{"a":1}\n{"b":2}\n')
    assert info.content_bytes == len(content)
    assert info.gzip_error is None
    assert info.fast_path_ok is False
    assert info.head == content
    with open_content(info) as stream:
        assert stream.read() == b'{"a":1}\n{"b":2}\n'


def test_inspect__truncated_gzip_long_tail_is_cut_to_64_kib_but_counted_whole(tmp_path):
    tail = b'{"x":"' + b"y" * 70_000
    content = b'{"a":1}\n' + tail
    info = source(tmp_path, gzip.compress(content)[:-8], "cut.ndjson.gz")
    assert info.readable_bytes == 8
    assert info.truncation is not None
    assert info.truncation.raw == tail[: files.MAX_RAW_TEXT].decode()
    assert info.truncation.line == 2


def test_inspect__truncated_gzip_without_any_newline(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK", 4)
    content = b'{"only":"partial'
    info = source(tmp_path, gzip.compress(content)[:-8], "cut.ndjson.gz")
    assert info.readable_bytes == 0
    assert info.truncation == Reject(
        1,
        files.TRUNCATED_GZIP,
        f"{GZIP_EOF} after {len(content)} bytes of content; 0 complete lines were "
        "read, the rest is missing",
        '{"only":"partial',
    )
    with open_content(info) as stream:
        assert stream.read() == b""


def test_open_content__truncated_gzip_prefix_reads_in_small_pieces(tmp_path):
    lines = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, b"p" * 500) for i in range(100))
    content = lines + b'{"torn":'
    info = source(tmp_path, gzip.compress(content)[:-8], "cut.ndjson.gz")
    assert info.readable_bytes == len(lines)
    with open_content(info) as stream:
        got = b""
        while piece := stream.read(777):
            got += piece
        assert got == lines
        prefix = stream.raw
        assert prefix.readable() is True
    assert prefix.stream.closed is True


def test_open_content__truncated_gzip_of_one_complete_byte(tmp_path):
    info = source(tmp_path, gzip.compress(b'\n{"torn":')[:-8], "cut.ndjson.gz")
    assert info.readable_bytes == 1
    with open_content(info) as stream:
        assert stream.read() == b"\n"


def test_open_content__plain_and_whole_gzip(tmp_path):
    plain = source(tmp_path, b"1\n2\n")
    with open_content(plain) as stream:
        assert stream.read() == b"1\n2\n"
    gz = source(tmp_path, gzip.compress(b"3\n4\n"), "x.ndjson.gz")
    with open_content(gz) as stream:
        assert stream.read() == b"3\n4\n"


# ------------------------------------------------------------------ SourceFile
@pytest.mark.parametrize(
    "flag",
    ["gzip_error", "truncation", "utf8_error", "has_cr", "has_delimiter", "bom"],
)
def test_source_file__each_problem_alone_leaves_the_fast_path(tmp_path, flag):
    info = SourceFile(
        path=tmp_path / "x", size=1, sha256="s", gzipped=False, head=b"{}"
    )
    assert info.fast_path_ok is True
    if flag == "bom":
        info.head = files.BOM + b"{}"
    elif flag == "truncation":
        info.truncation = Reject(1, "truncated_gzip", "d", "")
    else:
        setattr(info, flag, True if flag.startswith("has_") else "why")
    assert info.fast_path_ok is False


def test_source_file__first_char_skips_bom_and_whitespace():
    info = SourceFile(path=Path("x"), size=0, sha256="", gzipped=False)
    assert info.first_char == b""
    info.head = files.BOM + b" \n\t[1]"
    assert info.first_char == b"["
    assert info.has_bom is True
    info.head = b" " + files.BOM + b"{}"  # a BOM only counts at the very start
    assert info.has_bom is False


def test_raw_text__marks_bad_bytes_and_keeps_64_kib():
    assert raw_text(b"a\xffb\xc3\xa9") == "a\\xffbé"
    assert raw_text(b"z" * (files.MAX_RAW_TEXT + 5)) == "z" * files.MAX_RAW_TEXT


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize(
    ("content", "shape"),
    [
        (b'{"a":1}\n{"b":2}\n', "ndjson"),
        (b"[1,2]\n[3]\n", "ndjson"),  # the first line parses: NDJSON of arrays
        (b'[\n {"a": 1},\n {"b": 2}\n]\n', "array"),
        (b'[{"a":1},{"b":2}]', "array"),  # one line, no newline
        (b'{\n  "a": 1\n}\n', "object"),
        (files.BOM + b"  [\n1,\n2]\n", "array"),
        (files.BOM + b'{"a":1}\n', "ndjson"),  # its first line parses once the BOM goes
        (b"[1] ", "array"),  # no newline: the whole file is the document
        (b"[\n1,\n", "ndjson"),  # broken: left to the line reader, which rejects
        (b'"text"\n', "ndjson"),
        (b"", "ndjson"),
    ],
)
def test_detect_shape(tmp_path, content, shape):
    assert detect_shape(source(tmp_path, content)) == shape


@pytest.mark.parametrize(("limit_offset", "shape"), [(0, "array"), (-1, "ndjson")])
def test_detect_shape__documents_above_the_size_limit_are_read_as_lines(
    tmp_path, monkeypatch, limit_offset, shape
):
    content = b"[\n" + b'{"a":1},\n' * 200 + b'{"a":1}\n]'
    monkeypatch.setattr(files, "MAX_DOCUMENT_BYTES", len(content) + limit_offset)
    assert detect_shape(source(tmp_path, content)) == shape
    # A .gz is small on disk: its decompressed size is what counts.
    gz = source(tmp_path, gzip.compress(content), "x.json.gz")
    assert gz.size < len(content) + limit_offset
    assert detect_shape(gz) == shape


def test_iter_records__array_elements_numbered_from_one_and_compacted(tmp_path):
    info = source(tmp_path, b'[\n {"a": 1},\n\n {"b": [2, 3]}\n]\n')
    assert list(iter_records(info, "array")) == [(1, b'{"a":1}'), (2, b'{"b":[2,3]}')]


def test_iter_records__one_object_is_record_one(tmp_path):
    info = source(tmp_path, b'{\n  "a": "x"\n}\n')
    assert list(iter_records(info, "object")) == [(1, b'{"a":"x"}')]


def test_iter_records__only_the_line_ending_is_cut(tmp_path):
    info = source(tmp_path, b'{"a":1} \t\r\nabcX\r\n\r\n')
    assert list(iter_records(info, "ndjson")) == [(1, b'{"a":1} \t'), (2, b"abcX")]


def test_iter_records__lines_keep_their_numbers(tmp_path):
    content = files.BOM + b'{"a":1}\r\n\n  \n' + files.BOM + b'{"b":2}\n{"c":3}'
    info = source(tmp_path, content)
    assert list(iter_records(info, "ndjson")) == [
        (1, b'{"a":1}'),
        (4, files.BOM + b'{"b":2}'),  # only line 1 may start with a BOM
        (5, b'{"c":3}'),
    ]


# ------------------------------------------------------------------ staging
def test_stage_lines__line_n_is_record_n_and_python_rejects_are_blank(tmp_path):
    too_long = b'{"long":"' + b"x" * 12 + b'"}'  # 23 bytes, 24 with the bad byte
    at_limit = b'{"ok":"' + b"x" * 14 + b'"}'  # 23 bytes
    content = b"\n".join(
        [
            b'{"a":1}',
            b"",
            b'{"b":\r2}',
            b'{"u":"\xff"}',
            too_long + b"\xff",  # too large wins over invalid UTF-8
            b'{"d":"\x1f"}',
            at_limit[:-1],
            b"",
        ]
    )
    info = source(tmp_path, content)
    workdir = tmp_path / "work"
    workdir.mkdir()
    staged = stage_lines(info, workdir, max_record_bytes=22)
    assert staged.path.parent == workdir
    assert staged.path.name.startswith(f"staged-{info.sha256[:16]}-")
    assert staged.gzipped is False
    # A line without a record holds a space (files.BLANK_LINE): DuckDB's reader counts
    # a run of empty lines into the size of the line after them.
    assert staged.path.read_bytes() == (
        b'{"a":1}\n \n{"b": 2}\n \n \n \n' + at_limit[:-1] + b"\n"
    )
    assert staged.written == 7
    assert staged.rejects == [
        Reject(4, "invalid_utf8", "invalid UTF-8 at byte 6 of the record", '{"u":"\\xff"}'),
        Reject(
            5,
            "record_too_large",
            "record is 24 bytes; the limit is 22",
            too_long.decode() + "\\xff",
        ),
        Reject(
            6,
            "invalid_json",
            "raw control character 0x1f outside a JSON string escape",
            '{"d":"\x1f"}',
        ),
    ]  # fmt: skip


def test_stage_lines__array_file_becomes_one_record_a_line(tmp_path):
    info = source(tmp_path, b'[\n  {"a": 1},\n  {"b": 2}\n]\n', "x.json")
    workdir = tmp_path / "work"
    workdir.mkdir()
    staged = stage_lines(info, workdir, max_record_bytes=100)
    assert staged.path.read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert staged.rejects == []


def test_stage_lines__leading_blank_lines_are_kept(tmp_path):
    info = source(tmp_path, b"\n\n\n" + b'{"a":1}\n')
    workdir = tmp_path / "work"
    workdir.mkdir()
    staged = stage_lines(info, workdir, max_record_bytes=100)
    assert staged.path.read_bytes() == b' \n \n \n{"a":1}\n'
    assert staged.written == 4
