"""WARC and WET files (plain or gzip), via warcio.

"warc": each `response` record is a candidate document. Its HTML payload is decoded (strict
UTF-8, else the HTTP charset, else resiliparse's detection) and reduced to text by trafilatura
(default; main content, no comments, `favor_precision` as FineWeb does, but without its
cross-document `deduplicate` cache, which would make the output depend on reading order) or
resiliparse (`main_content=True`, over 10x faster on the sample). A response that yields no document is a
BadRecord, never a silent skip, so a crawl's losses can be audited: "http_status" (not 2xx),
"not_html" (a PDF, an image, ...), "empty_text" (nothing left after extraction),
"extraction_failed" (the extractor raised on hostile HTML). The WARC's own
`WARC-Identified-Payload-Type` is trusted over the server's Content-Type when present.

"wet": each `conversion` record's plain text (UTF-8 by the format) is the document.

Other record types (warcinfo, request, metadata, resource, revisit) are not documents and are
skipped. Positions are 1-based ordinals over all records of the file. The id is the
WARC-Record-ID (`urn:uuid:...`). `meta` keeps url and date, plus the extractor (warc) or CC's
identified language (wet).

warcio does not notice a file that ends inside a record (it returns a short payload, or stops
quietly inside headers), so the reader checks each record's declared length and, at the end,
that the last record ended where the file does: the record where the file breaks becomes a
"truncated_file" BadRecord, never a document made from half a page.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from warcio.archiveiterator import WARCIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from pipeline.document import Document
from pipeline.readers import BadRecord
from pipeline.readers.common import bad_record, derived_id
from pipeline.storage import AnyPath

Extractor = Callable[[str, str | None], str | None]
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
# What warcio raises on damaged input: its own errors, zlib's, ValueError for a non-numeric
# Content-Length, and AttributeError because warcio 1.8 trips over WARC headers cut short
# (`None.startswith`) instead of reporting them. Only `next(records)` is guarded by these.
_PARSE_ERRORS = (
    ArchiveLoadFailed,
    StatusAndHeadersParserException,
    zlib.error,
    EOFError,
    ValueError,
    AttributeError,
)


def read_warc(
    path: AnyPath, *, source: str, kind: str, html_extractor: str
) -> Iterator[Document | BadRecord]:
    """Documents of one WARC (`kind="warc"`) or WET (`kind="wet"`) file."""
    extract = _make_extractor(html_extractor) if kind == "warc" else None
    wanted = "response" if kind == "warc" else "conversion"
    with path.open("rb") as fh:
        records = WARCIterator(fh)
        record, number = None, 0
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except _PARSE_ERRORS as e:
                yield _unreadable(path, number + 1, records, fh, f"{type(e).__name__}: {e}")
                return
            number += 1
            if not (record.rec_headers.get_header("Content-Length") or "").strip().isdigit():
                # Mandatory, and warcio lets a missing or cut-off one pass (as length None or 0).
                yield _unreadable(path, number, records, fh, "no valid Content-Length")
                return
            if record.rec_type != wanted:
                continue
            payload = record.content_stream().read()
            record.raw_stream.read()  # the rest of the block, if the payload reader stopped early
            if _ended_early(record):
                break
            if extract is None:
                yield _wet_document(record, payload, path, source, number)
            else:
                yield _html_document(record, payload, path, source, number, extract, html_extractor)
        if record is not None and _ended_early(record):
            yield bad_record(path, number, None, "truncated_file", f"file ends inside record {number}", "")
        elif records.offset < os.fstat(fh.fileno()).st_size:  # bytes left that formed no record
            yield _unreadable(path, number + 1, records, fh, "no complete record")


def _ended_early(record: ArcWarcRecord) -> bool:
    # The block's LimitReader counts down Content-Length; anything left means the file stopped.
    return record.raw_stream.limit > 0


def _unreadable(path: AnyPath, number: int, records: WARCIterator, fh: BinaryIO, why: str) -> BadRecord:
    """Record `number` could not be parsed: "truncated_file" when the whole file has been read
    (it ends inside the record), else "corrupt_file" (garbage where a record should start)."""
    consumed = fh.tell() >= os.fstat(fh.fileno()).st_size and not (
        records.reader and records.reader.rem_length()
    )
    reason = "truncated_file" if consumed else "corrupt_file"
    return bad_record(path, number, None, reason, f"record {number} is unreadable ({why})", "")


def _html_document(
    record: ArcWarcRecord,
    payload: bytes,
    path: AnyPath,
    source: str,
    number: int,
    extract: Extractor,
    extractor_name: str,
) -> Document | BadRecord:
    url = record.rec_headers.get_header("WARC-Target-URI")
    http = record.http_headers
    content_type = http.get_header("Content-Type", "") if http else ""
    mime = record.rec_headers.get_header("WARC-Identified-Payload-Type") or content_type
    status = http.get_statuscode() if http else None
    if status and not status.startswith("2"):
        return bad_record(path, number, None, "http_status", f"HTTP {status} for {url}", payload)
    if "html" not in mime.lower():
        return bad_record(path, number, None, "not_html", f"{mime or 'no content type'} at {url}", payload)
    try:
        text = extract(_decode_html(payload, content_type), url)
    except Exception as e:  # third-party parsers on hostile HTML: one page must not end the file
        detail = f"{extractor_name} failed on {url}: {type(e).__name__}: {e}"
        return bad_record(path, number, None, "extraction_failed", detail, payload)
    if not text or text.isspace():
        detail = f"{extractor_name} found no text in {url}"
        return bad_record(path, number, None, "empty_text", detail, payload)
    meta = {"url": url, "date": record.rec_headers.get_header("WARC-Date"), "extractor": extractor_name}
    return Document(_record_id(record, source, path, number), source, text, meta, number)


def _wet_document(
    record: ArcWarcRecord, payload: bytes, path: AnyPath, source: str, number: int
) -> Document | BadRecord:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        return bad_record(path, number, None, "invalid_utf8", f"invalid UTF-8 at byte {e.start}", payload)
    url = record.rec_headers.get_header("WARC-Target-URI")
    if not text or text.isspace():
        return bad_record(path, number, None, "empty_text", f"empty conversion record for {url}", payload)
    meta = {"url": url, "date": record.rec_headers.get_header("WARC-Date")}
    if language := record.rec_headers.get_header("WARC-Identified-Content-Language"):
        meta["language"] = language
    return Document(_record_id(record, source, path, number), source, text, meta, number)


def _record_id(record: ArcWarcRecord, source: str, path: AnyPath, number: int) -> str:
    record_id = (record.rec_headers.get_header("WARC-Record-ID") or "").strip("<> ")
    return record_id or derived_id(source, path.name, number)


def _decode_html(payload: bytes, content_type: str) -> str:
    """Most of the web is UTF-8 and a strict UTF-8 decode that succeeds is almost never wrong;
    otherwise the server's charset, otherwise detection (which also reads <meta charset>)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    declared = _CHARSET.search(content_type)
    encoding = declared.group(1) if declared else detect_encoding(payload, from_html_meta=True)
    try:
        return bytes_to_str(payload, encoding)
    except LookupError:  # a charset name no codec knows
        return bytes_to_str(payload, detect_encoding(payload, from_html_meta=True))


def _make_extractor(name: str) -> Extractor:
    """Import only the extractor in use (trafilatura alone takes about a second to import)."""
    if name == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        def resiliparse_extract(html: str, url: str | None) -> str:
            return extract_plain_text(html, preserve_formatting=True, main_content=True, alt_texts=False)

        return resiliparse_extract

    import trafilatura

    def trafilatura_extract(html: str, url: str | None) -> str | None:
        return trafilatura.extract(
            html, url=url, include_comments=False, favor_precision=True, deduplicate=False
        )

    return trafilatura_extract
