"""Finding input files, fingerprinting them, and turning odd shapes into plain NDJSON.

The loaders' fast path hands a file straight to DuckDB, which reads it line by line far
faster than Python can. That is only safe for plain NDJSON in valid UTF-8, so one cheap
pass here (the same pass that computes the sha256 the ledger keys on) decides whether a
file qualifies. Everything else (a BOM, invalid UTF-8, a JSON array, one pretty-printed
object, an oversized line) is rewritten by Python into a "staged" NDJSON file in which
line N still holds record N; lines Python had to reject are left blank there and reported
separately, so line numbers in the warehouse always point into the original file.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import re
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

CHUNK = 8 << 20
HEAD_BYTES = 64 << 10
BOM = b"\xef\xbb\xbf"
MAX_RAW_TEXT = 64 * 1024
# DuckDB reads lines as a one-column CSV with this (4-byte maximum) delimiter. JSON text
# can never hold it raw (control characters must be escaped), so a line containing it is
# invalid JSON anyway; such files take the staged path, where the line is rejected.
LINE_DELIMITER = "\x1f\x1e\x1d\x1c"
# DuckDB's file readers expand a glob pattern in any path they are given: a file named
# `a[1].ndjson` would be read as `a1.ndjson` (another file's records under this file's
# ledger row, and its own never loaded), and `{a,b}` as nothing. A path holding any of
# these characters is never handed to DuckDB: Python reads it, and DuckDB reads Python's
# copy under a plain name.
GLOB_CHARACTERS = frozenset("*?[]{}")
# Whole-document JSON (arrays, single objects) is parsed in memory; past this size a file
# is treated as NDJSON instead (big exports should be NDJSON anyway).
MAX_DOCUMENT_BYTES = 512 << 20
# Plain files up to this size are checked for UTF-8 while they are hashed, so that they
# may join a batch (batch.MAX_FILE_BYTES); the check runs in the prefetch thread, beside
# the hash (measured: 0.1 s more for an 82 MB file, whose hash alone takes 0.1 s).
UTF8_CHECK_BYTES = 64 << 20
# Names a writer uses while a file is still open; a folder scan never picks them up.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".open", ".inprogress", ".writing")


class InputError(Exception):
    """A PATH argument cannot be used (missing, unreadable); a usage error."""


TRUNCATED_GZIP = "truncated_gzip"
# The first two bytes of every gzip member (RFC 1952, section 2.3.1).
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Found:
    """What the PATH arguments hold."""

    files: list[Path]
    # Folders under a PATH that could not be listed (no permission), and PATHs inside a
    # folder that cannot be entered, each with why: none of their files is loaded, and
    # the run says so (exit 4), as for a file.
    unlisted: list[tuple[Path, OSError]] = field(default_factory=list)
    # Folders named as PATH whose files all have other extensions (a `.zst` export, a
    # wrong folder), with how many: the run says so, rather than read 0 in silence.
    only_other_files: list[tuple[Path, int]] = field(default_factory=list)


def discover(paths: Iterable[str | Path], extensions: tuple[str, ...]) -> Found:
    """Files named directly, plus files under folders (recursively) with a known extension.

    A file named on the command line is taken whatever its name; inside folders only
    `extensions` (optionally followed by `.gz`) count, hidden and in-progress files do not.
    Links to files are followed, links to folders are not.
    """
    found: dict[Path, None] = {}
    unlisted: list[tuple[Path, OSError]] = []
    only_other_files: list[tuple[Path, int]] = []
    for raw in paths:
        path = Path(raw)
        if (denied := _denied(path)) is not None:
            unlisted.append((path, denied))
            continue
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            wanted, others = _files_under(path, extensions, unlisted)
            for child in wanted:
                found[child.resolve()] = None
            if not wanted and others:
                only_other_files.append((path, others))
        elif path.exists():
            # A FIFO or device would block or never end; only regular files are data.
            kind = _kind(path)
            raise InputError(f"not a regular file ({kind}): {raw}")
        else:
            raise InputError(f"no such file or folder: {raw}")
    return Found(list(found), unlisted, only_other_files)


def check_named(paths: Iterable[str | Path]) -> None:
    """InputError for a PATH that does not exist, before the warehouse is opened (a
    typo must not create an empty DuckDB file); `discover` says it again when it runs.
    A PATH inside a folder this user may not enter exists for all it can tell: not a
    typo (click's own check said "does not exist" of it) but a file that cannot be
    read, said by the run as one (exit 4)."""
    for raw in paths:
        path = Path(raw)
        if _denied(path) is None and not (path.exists() or path.is_symlink()):
            raise InputError(f"no such file or folder: {raw}")


def _denied(path: Path) -> PermissionError | None:
    try:
        path.stat()
    except PermissionError as exc:
        return exc
    except OSError:
        pass  # missing, or a dangling link: said by the caller
    return None


def _files_under(
    folder: Path, extensions: tuple[str, ...], unlisted: list[tuple[Path, OSError]]
) -> tuple[list[Path], int]:
    """The wanted files under `folder`, in path order, and how many other visible files
    it holds. A folder that cannot be listed goes to `unlisted` (pathlib's rglob passed
    over it in silence)."""

    def cannot_list(exc: OSError) -> None:
        unlisted.append((Path(exc.filename or folder), exc))

    wanted: list[Path] = []
    others = 0
    for top, _folders, names in os.walk(folder, onerror=cannot_list):
        for name in names:
            child = Path(top) / name
            if not child.is_file():  # a dangling link, a pipe
                continue
            if _wanted(child, extensions):
                wanted.append(child)
            elif not name.startswith(".") and not name.lower().endswith(
                IN_PROGRESS_SUFFIXES
            ):  # not hidden, nor still being written
                others += 1
    return sorted(wanted), others


def storable_name(path: Path) -> bool:
    """Whether the warehouse can record this path as text (the ledger's and the rejects'
    `source_file`, each row's `_source_file`). A name with bytes that are not UTF-8
    reaches Python as lone surrogates, which neither DuckDB nor PostgreSQL accepts in a
    statement; an escaped spelling would name no file, so such a file is not loaded."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_name(path: Path) -> str:
    """The path for a message, each byte that is not UTF-8 shown as `\\xff`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file or folder"


def _wanted(path: Path, extensions: tuple[str, ...]) -> bool:
    name = path.name.lower()
    if name.startswith(".") or name.endswith(IN_PROGRESS_SUFFIXES):
        return False
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(extensions)


@dataclass
class SourceFile:
    """What one pass over a file learned: identity, encoding health and first bytes."""

    path: Path
    size: int
    sha256: str
    gzipped: bool
    gzip_error: str | None = None
    utf8_error: str | None = None
    head: bytes = b""
    is_empty: bool = True
    # DuckDB's CSV reader treats a lone CR as a line break, which would shift line
    # numbers, and the delimiter byte would split a line: both force the staged path.
    has_cr: bool = False
    has_delimiter: bool = False
    # A .gz that ends before its end-of-stream marker (a copy cut short, a writer that
    # died): its complete lines are read, and the cut itself is this one reject.
    truncation: Reject | None = None
    readable_bytes: int | None = None  # content up to the last complete line
    # Bytes of content, decompressed for a .gz (up to a cut): what a batch holds.
    content_bytes: int = 0
    # Lines of content, a last one without a line break included: what DuckDB's line
    # reader must return for the file. It can return fewer without an error (a last
    # line longer than its buffer, about 32 MB, is left out), so every read is checked
    # against this count (stage.check_lines_read).
    content_lines: int = 0
    # The content may end inside a record: its last line has no line break (RFC 4180
    # allows that of a finished CSV; it is also what a file being written looks like),
    # or, in a CSV, a quoted field is still open (a line break inside quotes is data).
    # When the file was last modified (seconds since the epoch, taken after reading it)
    # and whether it changed while it was read: see still_being_written.
    ends_unfinished: bool = False
    modified_at: float = 0.0
    changed_while_read: bool = False
    # The copy Python staged for DuckDB to read instead (stage_lines), when the
    # prefetch thread made it ahead of the file's batch; taken once, by the batch.
    staged: StagedLines | None = None

    @property
    def display(self) -> str:
        return str(self.path)

    @property
    def has_bom(self) -> bool:
        return self.head.startswith(BOM)

    @property
    def unreadable(self) -> Reject | None:
        """The one reject for a file whose content cannot be read as its name says: a
        `.gz` that is not gzip, or gzip content under a name without `.gz` (which
        would otherwise read as a few invalid_utf8 records of binary noise). Renamed,
        the same bytes load: the ledger reads a file again under a name that reads it
        otherwise when its earlier load landed nothing (runner.read_again)."""
        if self.gzip_error:
            return Reject(None, "invalid_gzip", self.gzip_error, "")
        if not self.gzipped and self.head.startswith(GZIP_MAGIC):
            return Reject(
                None,
                "unreadable_file",
                "gzip-compressed content in a file whose name does not end in .gz: "
                f"rename it to {self.path.name}.gz and load it again",
                "",
            )
        return None

    @property
    def fast_path_ok(self) -> bool:
        """Plain NDJSON in clean UTF-8 that DuckDB may read directly, at a path it
        reads as written."""
        return not (
            not duckdb_reads_literally(self.path)
            or self.unreadable
            or self.truncation
            or self.utf8_error
            or self.has_bom
            or self.has_cr
            or self.has_delimiter
        )

    @property
    def first_char(self) -> bytes:
        stripped = self.head.removeprefix(BOM).lstrip()
        return stripped[:1]


# Formats in which the first part of a record can itself read as a whole record: a CSV
# row cut after "129" of "12999" is a valid row. A JSON object cut short is never valid
# JSON, so a torn JSON line is a reject that a later load of the finished file resolves
# (ledger.resolve_fixed_rejects), and those files load at once.
CUT_ROWS_PARSE = (".csv",)


def _cut_rows_parse(path: Path) -> bool:
    return path.name.lower().removesuffix(".gz").endswith(CUT_ROWS_PARSE)


def still_being_written(source: SourceFile, now: float, settle_seconds: float) -> bool:
    """Whether a CSV file (or .csv.gz) may be mid-write, so that loading it now could
    load a cut row.

    Either it changed while `inspect` read it, or its content ends unfinished (no line
    break after the last line, or a quoted field still open) and it was modified less
    than `settle_seconds` before `now`. Not loaded and not recorded, it is read again by
    the next run; once unchanged for that long, a last line without a break is taken as
    finished, as RFC 4180 allows (and an open quote is then the strict CSV reader's
    `malformed_csv_row`). A .gz whose writer appends gzip members is whole between two
    of them, so the same rule reads its content. A modification time more than
    `settle_seconds` ahead of `now` says the two clocks disagree, so time cannot tell:
    the file loads, as one whose writer died would (see `clock_disagrees`).
    """
    if not _cut_rows_parse(source.path) or source.truncation or source.gzip_error:
        return False
    if source.changed_while_read:
        return True
    recent = now - source.modified_at < settle_seconds
    return (
        source.ends_unfinished
        and recent
        and not clock_disagrees(source, now, settle_seconds)
    )


def clock_disagrees(source: SourceFile, now: float, settle_seconds: float) -> bool:
    """A CSV file ending unfinished whose modification time is further ahead of `now`
    than `settle_seconds`: loaded, but said, since it may be mid-write."""
    return (
        _cut_rows_parse(source.path)
        and source.ends_unfinished
        and source.modified_at - now >= settle_seconds
    )


def duckdb_reads_literally(path: Path) -> bool:
    """Whether DuckDB, given this path, reads this file and no other (GLOB_CHARACTERS)."""
    return GLOB_CHARACTERS.isdisjoint(str(path))


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def reading(path: Path) -> str:
    """How a file's name says to read its bytes: gunzipped or not, then as CSV, Parquet
    or JSON (NDJSON, a JSON array or one object, told apart by the content)."""
    name = path.name.lower()
    base = name.removesuffix(".gz")
    kind = next(
        (kind for kind in ("csv", "parquet") if base.endswith(f".{kind}")), "json"
    )
    return f"gzip {kind}" if name.endswith(".gz") else kind


def inspect(path: Path) -> SourceFile:
    """Hash the stored bytes; for the content, check gzip and UTF-8 and keep the head."""
    gzipped = _is_gzip(path)
    digest = hashlib.sha256()
    size = 0
    info = SourceFile(path=path, size=0, sha256="", gzipped=gzipped)
    checker = _ContentChecker(info, count_quotes=_cut_rows_parse(path))
    with path.open("rb") as handle:
        # A small plain file is checked for UTF-8 here, in the prefetch thread, so an
        # invalid one never joins (and fails) a batch of many (batch.py); big ones are
        # left to DuckDB, which refuses invalid UTF-8 itself.
        before = os.fstat(handle.fileno())
        check_utf8 = not gzipped and before.st_size <= UTF8_CHECK_BYTES
        checker.checked_utf8 = gzipped or check_utf8
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if not gzipped:
                checker.feed(chunk, check_utf8=check_utf8)
        # After the read: a writer that starts a row while it runs moves the time.
        after = os.fstat(handle.fileno())
    info.modified_at = after.st_mtime
    info.changed_while_read = after.st_mtime != before.st_mtime or after.st_size != size
    info.size = size
    info.sha256 = digest.hexdigest()
    if gzipped:
        try:
            with gzip.open(path, "rb") as stream:
                # read1: a read(n) that hits the cut would drop what it decompressed.
                while chunk := stream.read1(CHUNK):
                    checker.feed(chunk)
        except EOFError as exc:
            # Cut short: keep what decompressed, up to its last complete line.
            info.content_bytes = checker.offset
            info.readable_bytes = checker.offset - checker.tail_bytes
            info.truncation = Reject(
                checker.lines + 1,
                TRUNCATED_GZIP,
                f"{exc} after {checker.offset} bytes of content; "
                f"{checker.lines} complete lines were read, the rest is missing",
                raw_text(checker.tail),
            )
            return info
        except (OSError, zlib.error) as exc:
            if _after_a_whole_stream(exc) and checker.offset:
                # Bytes after a complete gzip stream (whose checksum held) that are not
                # gzip: the content is whole, and only those bytes are the reject.
                # Before, the file was one reject and its records were lost.
                info.content_bytes = info.readable_bytes = checker.offset
                info.truncation = Reject(
                    None,
                    "invalid_gzip",
                    f"the bytes after the gzip stream are not gzip ({exc}); its "
                    f"{checker.offset} bytes of content were read",
                    "",
                )
                return info
            info.gzip_error = f"not a readable gzip file: {exc}"
            return info
    checker.finish()
    info.content_bytes = checker.offset
    info.content_lines = checker.lines + (1 if checker.tail_bytes else 0)
    info.ends_unfinished = (
        bool(checker.ending) and not checker.ending.endswith((b"\n", b"\r"))
    ) or checker.quotes % 2 == 1
    return info


def _after_a_whole_stream(exc: BaseException) -> bool:
    """Whether gzip failed on the bytes after a complete stream: Python reads on past a
    stream for another one, and only there says "Not a gzipped file" (a stream's own
    damage is a CRC, length or zlib error)."""
    return isinstance(exc, gzip.BadGzipFile) and str(exc).startswith(
        "Not a gzipped file"
    )


class _ContentChecker:
    """Streams decompressed content: UTF-8 validity, emptiness, the first bytes."""

    def __init__(self, info: SourceFile, count_quotes: bool = False):
        self.info = info
        # In CSV, quotes come in pairs ("" inside a field is an escaped one): an odd
        # count means the content ends inside a quoted field. Counted only for CSV.
        self.count_quotes = count_quotes
        self.quotes = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.offset = 0
        self.lines = 0  # complete lines (newline-terminated) so far
        self.tail = b""  # bytes after the last newline, at most MAX_RAW_TEXT kept
        self.tail_bytes = 0
        # The content's last bytes, spaces and tabs after them left out.
        self.ending = b""
        self.checked_utf8 = True

    def feed(self, chunk: bytes, check_utf8: bool = True) -> None:
        """`check_utf8=False` leaves plain files to DuckDB, which refuses invalid UTF-8
        (the loader then falls back to the staged path, which rejects the bad lines)."""
        info = self.info
        if len(info.head) < HEAD_BYTES:
            info.head += chunk[: HEAD_BYTES - len(info.head)]
        if info.is_empty and chunk.strip():
            info.is_empty = False
        trimmed = chunk.rstrip(b" \t")
        if trimmed:
            self.ending = trimmed[-2:]
        if self.count_quotes:
            self.quotes += chunk.count(b'"')
        if not info.has_cr and b"\r" in chunk:
            info.has_cr = True
        if not info.has_delimiter and b"\x1f" in chunk:
            info.has_delimiter = True
        last_newline = chunk.rfind(b"\n")
        if last_newline >= 0:
            self.lines += chunk.count(b"\n")
            after = chunk[last_newline + 1 :]
            self.tail, self.tail_bytes = after[:MAX_RAW_TEXT], len(after)
        else:
            self.tail = (self.tail + chunk)[:MAX_RAW_TEXT]
            self.tail_bytes += len(chunk)
        if check_utf8 and info.utf8_error is None:
            # An ASCII chunk is valid UTF-8 (a scan far cheaper than decoding) unless
            # the chunk before it ended inside a multi-byte sequence.
            pending = len(self.decoder.getstate()[0])
            if pending or not chunk.isascii():
                try:
                    self.decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # exc.start counts from the sequence held over from the last chunk.
                    at = self.offset - pending + exc.start
                    info.utf8_error = f"invalid UTF-8 at byte {at}"
        self.offset += len(chunk)

    def finish(self) -> None:
        if self.info.utf8_error is None and self.offset and self.checked_utf8:
            try:
                self.decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.info.utf8_error = "file ends inside a UTF-8 sequence"


def open_content(source: SourceFile) -> BinaryIO:
    """The decompressed bytes of a file (of a truncated .gz: its complete lines), read
    from the stored bytes `inspect` hashed and judged and no further: what a writer
    appends afterwards waits for the next run, which sees a new file (a new sha256),
    so the ledger's hash is always that of what loaded."""
    stored = io.BufferedReader(
        _Prefix(source.path.open("rb", buffering=0), source.size)
    )
    if not source.gzipped:
        return stored  # type: ignore[return-value]
    stream = gzip.GzipFile(fileobj=stored, mode="rb")
    content = _Prefix(stream, source.readable_bytes, also_close=stored)
    return io.BufferedReader(content)  # type: ignore[return-value]


class _Prefix(io.RawIOBase):
    """The first `limit` bytes of a stream (all of them when None): the stored bytes
    inspect() hashed, or the content of a cut .gz known to decompress. Closing it
    closes the stream and `also_close` (what a GzipFile reads from, which it does not
    close itself)."""

    def __init__(self, stream, limit: int | None, also_close=None):
        self.stream = stream
        self.left = limit
        self.read_some = getattr(stream, "read1", stream.read)
        self.also_close = also_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        wanted = len(buffer) if self.left is None else min(len(buffer), self.left)
        if wanted <= 0:
            return 0
        data = self.read_some(wanted)
        buffer[: len(data)] = data
        if self.left is not None:
            self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.stream.close()
        if self.also_close is not None:
            self.also_close.close()
        super().close()


def raw_text(data: bytes) -> str:
    """Text for the rejects table: never fails, marks undecodable bytes, at most 64 KB."""
    return data[:MAX_RAW_TEXT].decode("utf-8", errors="backslashreplace")


# ------------------------------------------------------------------ shapes
def detect_shape(source: SourceFile) -> str:
    """`ndjson`, `array` or `object` (one JSON document that is not line-delimited).

    A file whose first line parses on its own is NDJSON, even if that line is an array
    (it is then rejected as `not_an_object`). Only when the first line does not parse is
    the whole file tried as one JSON document.
    """
    first = source.first_char
    if first not in (b"[", b"{"):
        return "ndjson"
    head = source.head.removeprefix(BOM).lstrip()
    newline = head.find(b"\n")
    if newline != -1:
        try:
            orjson.loads(head[:newline])
            return "ndjson"
        except orjson.JSONDecodeError:
            pass
    document = _load_document(source)
    if isinstance(document, list):
        return "array"
    if isinstance(document, dict):
        return "object"
    return "ndjson"


def _load_document(source: SourceFile) -> object:
    if source.size > MAX_DOCUMENT_BYTES:
        return None
    with open_content(source) as stream:
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        return None
    try:
        return orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError:
        return None


def iter_records(source: SourceFile, shape: str) -> Iterator[tuple[int, bytes]]:
    """(line or 1-based record index, record bytes) for every non-blank record.

    NDJSON lines lose their line ending (CRLF too) and a leading BOM; array elements and
    a lone object are re-serialised compactly.
    """
    if shape in ("array", "object"):
        document = _load_document(source)
        items = document if isinstance(document, list) else [document]
        for index, item in enumerate(items, start=1):
            yield index, orjson.dumps(item)
        return
    with open_content(source) as stream:
        for number, line in enumerate(stream, start=1):
            if number == 1:
                line = line.removeprefix(BOM)
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


# ------------------------------------------------------------------ staging
@dataclass
class Reject:
    line: int | None
    reason: str
    detail: str
    raw: str


@dataclass
class StagedLines:
    """An NDJSON file DuckDB can read line by line, with Python's own rejects."""

    path: Path
    gzipped: bool
    rejects: list[Reject] = field(default_factory=list)
    written: int = 0  # lines written so far (while staging); then, all of them


# What a staged copy holds on a line without a record (a blank line of the source, or a
# record rejected here): a space, which the SQL reads as blank (stage.nonblank_lines_sql).
# Not an empty line: DuckDB's reader counts a run of empty lines into the size of the
# line after them, so 20 of them before a record just under the limit failed the whole
# file, and the staged copy too, on every rerun.
BLANK_LINE = b" \n"
_EMPTY_LINE = re.compile(rb"^(?=\n)", re.MULTILINE)


def stage_lines(
    source: SourceFile, workdir: Path, max_record_bytes: int
) -> StagedLines:
    """Rewrite a file so line N of the result is record N of the source (or blank).

    Records that are not UTF-8 or too large are rejected here, because DuckDB would
    refuse the whole file for one of them.
    """
    shape = detect_shape(source)
    # A name of its own per copy: two files with the same bytes may both be staged
    # ahead (runner._Prefetcher), and removing one copy must not remove the other's.
    handle, name = tempfile.mkstemp(
        dir=workdir, prefix=f"staged-{source.sha256[:16]}-", suffix=".ndjson"
    )
    target = Path(name)
    staged = StagedLines(path=target, gzipped=False)
    try:
        with os.fdopen(handle, "wb") as out:
            if shape == "ndjson":
                _stage_ndjson(source, out, staged, max_record_bytes)
            else:
                _stage_records(
                    iter_records(source, shape), out, staged, max_record_bytes, 0
                )
    except BaseException:
        # A file gone or unreadable, a full disk: no partial copy stays behind.
        target.unlink(missing_ok=True)
        raise
    return staged


# Bytes per block of lines checked at once. A block without a problem is copied as it is
# (C-speed checks, no per-line Python); one with a problem goes line by line. Small
# enough that a few bad records in a large file send few good lines the slow way.
STAGE_BLOCK_BYTES = 256 << 10
# Bytes that make a block need the line-by-line path: CR (DuckDB's reader would break the
# line there), 0x1f (our line delimiter's first byte), and the whitespace that
# bytes.strip() removes but the SQL blank-line test does not (VT, FF), so that a blank
# line is blank the same way on both paths.
_SLOW_BYTES = (b"\r", b"\x1f", b"\x0b", b"\x0c")


def _stage_ndjson(
    source: SourceFile, out: BinaryIO, staged: StagedLines, max_record_bytes: int
) -> None:
    """Copy NDJSON blocks of whole lines; only blocks with a problem go line by line."""
    lines_before = 0
    first = True
    with open_content(source) as stream:
        # The start of a line longer than a block, in pieces: joined once its end is
        # read, not again with every block (which took 99 s for a 300 MB line).
        pieces: list[bytes] = []
        while True:
            data = stream.read(STAGE_BLOCK_BYTES)
            if not data:
                break
            end = data.rfind(b"\n") + 1
            if end == 0:
                pieces.append(data)
                continue
            block = b"".join([*pieces, data[:end]])
            pieces = [data[end:]]
            if first:
                block = block.removeprefix(BOM)
                first = False
            lines_before = _stage_block(
                block, out, staged, max_record_bytes, lines_before
            )
        rest = b"".join(pieces)
        if rest:
            if first:
                rest = rest.removeprefix(BOM)
            lines_before = _stage_block(
                rest + b"\n", out, staged, max_record_bytes, lines_before
            )
    staged.written = max(staged.written, lines_before)


def _stage_block(
    block: bytes,
    out: BinaryIO,
    staged: StagedLines,
    max_record_bytes: int,
    lines_before: int,
) -> int:
    """Stage one block of whole lines (ending in a newline); returns the lines so far."""
    if _block_is_clean(block, max_record_bytes):
        if block.startswith(b"\n") or b"\n\n" in block:
            block = _EMPTY_LINE.sub(b" ", block)
        out.write(block)
        return lines_before + block.count(b"\n")
    lines = block.split(b"\n")[:-1]
    records = (
        (lines_before + index, line)
        for index, line in enumerate(lines, start=1)
        if line.strip()
    )
    _stage_records(records, out, staged, max_record_bytes, lines_before)
    written = lines_before + len(lines)
    _pad_to(out, staged, written)
    return written


def _block_is_clean(block: bytes, max_record_bytes: int) -> bool:
    """Whether a block may be copied as it is. The checks are C-speed scans; the common
    block (shorter than the record limit, ASCII) needs no split and no decoding."""
    if any(byte in block for byte in _SLOW_BYTES):
        return False
    # A line is shorter than its block, so only a block longer than the limit (blocks
    # are 256 KB, the limit 1 MB unless set lower) can hold a record over it.
    if len(block) > max_record_bytes and (
        max(map(len, block.split(b"\n"))) > max_record_bytes
    ):
        return False
    if block.isascii():  # ASCII is valid UTF-8; the scan is far cheaper than decoding
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _stage_records(
    records: Iterable[tuple[int, bytes]],
    out: BinaryIO,
    staged: StagedLines,
    max_record_bytes: int,
    written: int,
) -> None:
    """Write each record on its own line number (blank lines between), rejecting here
    what DuckDB's line reader cannot take."""
    staged.written = written
    for number, record in records:
        if number > staged.written + 1:
            out.write(BLANK_LINE * (number - staged.written - 1))
        staged.written = number
        record = record.rstrip(b"\r")
        problem = _record_problem(record, max_record_bytes)
        if problem:
            staged.rejects.append(Reject(number, *problem, raw_text(record)))
            out.write(BLANK_LINE)
        else:
            # A CR inside a record is JSON whitespace (raw CRs inside strings are
            # invalid JSON anyway), so a space keeps its meaning and the line intact.
            out.write(record.replace(b"\r", b" ") + b"\n")


def _pad_to(out: BinaryIO, staged: StagedLines, lines: int) -> None:
    """Blank lines up to `lines`, so the next block starts on its own line number."""
    if lines > staged.written:
        out.write(BLANK_LINE * (lines - staged.written))
        staged.written = lines


def _record_problem(record: bytes, max_record_bytes: int) -> tuple[str, str] | None:
    if len(record) > max_record_bytes:
        return (
            "record_too_large",
            f"record is {len(record)} bytes; the limit is {max_record_bytes}",
        )
    try:
        record.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ("invalid_utf8", f"invalid UTF-8 at byte {exc.start} of the record")
    if b"\x1f" in record:
        return (
            "invalid_json",
            "raw control character 0x1f outside a JSON string escape",
        )
    return None
