"""Readers on the shipped sample corpus, and on broken inputs made from it.

Every malformed-input test checks both sides: the BadRecord says exactly where and why, and
every good document around it still comes through once, in order.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.document import Document, docs_to_table
from pipeline.readers import FORMATS, BadRecord, expand_paths, read_source

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "data" / "sample"
BINARY = ROOT / "pipeline" / "assets" / "lid.176.ftz"
WARC_RESPONSES = {  # response records per sample WARC (README: the resiliparse slice has 16)
    "commoncrawl-whirlwind.warc.gz": 1,
    "dolma-sample-0000.warc.gz": 22,
    "resiliparse-warcfile.warc.gz": 16,
}


def readme_counts() -> dict[str, int]:
    """Doc counts as documented in data/sample/README.md, so the test and the README agree."""
    readme = (SAMPLE / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+\.jsonl\.gz)` \| ([\d,]+) ", readme, re.MULTILINE)
    return {name: int(count.replace(",", "")) for name, count in rows}


COUNTS = readme_counts()


def raw_records(path: Path) -> list[dict]:
    with gzip.open(path, "rb") as f:
        return [json.loads(line) for line in f]


def raw_lines(path: Path, n: int) -> list[bytes]:
    with gzip.open(path, "rb") as f:
        return [f.readline().rstrip(b"\n") for _ in range(n)]


def split(items: list) -> tuple[list[Document], list[BadRecord]]:
    docs = [x for x in items if isinstance(x, Document)]
    bad = [x for x in items if isinstance(x, BadRecord)]
    assert len(docs) + len(bad) == len(items)
    return docs, bad


def read(path: Path, fmt: str = "jsonl", source: str = "src", **kwargs) -> list[Document | BadRecord]:
    return list(read_source(path, source=source, format=fmt, **kwargs))


def where(bad: BadRecord) -> tuple:
    return bad.path, bad.line, bad.field, bad.reason


# --- the shipped sample ------------------------------------------------------------------------


def test_readme_lists_every_sample_file():
    assert len(COUNTS) == 9
    assert sorted(COUNTS) == sorted(p.name for p in SAMPLE.glob("*.jsonl.gz"))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_sample_jsonl_matches_records(name):
    path = SAMPLE / name
    source = "sample-" + name.split(".")[0]
    docs, bad = split(read(path, source=source))
    records = raw_records(path)
    assert not bad
    assert len(docs) == COUNTS[name] == len(records)
    assert [d.id for d in docs] == [r["id"] for r in records]
    for doc, record in zip(docs, records, strict=True):
        assert doc.source == source
        assert doc.text == record["text"]
        assert doc.meta.get("url") == record.get("url")
        assert doc.meta["orig_source"] == record["source"]
        assert {k: doc.meta[k] for k in record.get("meta", {})} == record.get("meta", {})
        json.dumps(doc.meta)


def test_expand_paths():
    jsonl = expand_paths(str(SAMPLE / "*.jsonl.gz"), "jsonl")
    assert [p.name for p in jsonl] == sorted(COUNTS)
    assert expand_paths(SAMPLE, "jsonl") == jsonl  # a folder expands to its files of the format
    warc_dir = SAMPLE / "warc"
    assert [p.name for p in expand_paths(warc_dir, "warc")] == sorted(WARC_RESPONSES)
    assert [p.name for p in expand_paths(warc_dir, "wet")] == ["commoncrawl-whirlwind.warc.wet.gz"]
    assert expand_paths("HuggingFaceFW/fineweb", "hf") == [Path("HuggingFaceFW/fineweb")]
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        expand_paths(str(SAMPLE / "nothing-here*.jsonl"), "jsonl")
    with pytest.raises(ValueError, match="unknown input format"):
        expand_paths(SAMPLE, "csv")


def test_read_source_rejects_bad_arguments_at_call_time():
    path = SAMPLE / "web_dolma_cc.jsonl.gz"
    assert "jsonl" in FORMATS
    with pytest.raises(ValueError, match="unknown input format"):
        read_source(path, source="s", format="csv")
    with pytest.raises(TypeError):
        read_source(path, source="s", format="jsonl", split="train")
    with pytest.raises(ValueError, match="html_extractor"):
        read_source(
            SAMPLE / "warc" / "dolma-sample-0000.warc.gz", source="s", format="warc", html_extractor="bs4"
        )


# --- malformed JSONL ---------------------------------------------------------------------------


def write_compressed(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_malformed_lines_are_quarantined_and_neighbours_kept(tmp_path, suffix):
    lines = raw_lines(SAMPLE / "books_tinyshakespeare.jsonl.gz", 11)
    recs = [json.loads(line) for line in lines]
    text_key = b'"text": "'
    no_text = {k: v for k, v in recs[5].items() if k != "text"}
    emoji_no_id = {**recs[8], "id": None, "text": "\U0001f600 " + recs[8]["text"]}  # dumped as \ud83d\ude00
    bad_meta = json.dumps({**recs[10], "meta": {"note": "x"}}).encode().replace(b'"x"', b'"\\udfff"')
    file_lines = [
        lines[0],  # 1 good
        lines[1],  # 2 good
        lines[2][:-1],  # 3 closing brace cut off
        lines[3].replace(text_key, text_key + b"\xff\xfe", 1),  # 4 invalid UTF-8 inside the text
        lines[4].replace(text_key, text_key + b"\\ud800", 1),  # 5 lone surrogate escape
        json.dumps(no_text).encode(),  # 6
        json.dumps({**recs[6], "text": " \n\t "}).encode(),  # 7 whitespace only
        json.dumps({**recs[7], "text": 42}).encode(),  # 8
        b"  ",  # 9 blank: not a record
        b"[1, 2]",  # 10 valid JSON, not an object
        json.dumps(emoji_no_id).encode(),  # 11 good, derived id
        json.dumps({**recs[9], "id": 12345, "source": "elsewhere"}).encode(),  # 12 good, int id
        bad_meta,  # 13 lone surrogate in meta
        lines[10],  # 14 good, and no newline at the end of the file
    ]
    path = write_compressed(tmp_path / f"mixed{suffix}", b"\n".join(file_lines))
    items = read(path, source="shakespeare")
    docs, bad = split(items)

    assert [d.id for d in docs] == [
        recs[0]["id"],
        recs[1]["id"],
        f"shakespeare/{path.name}#11",
        "12345",
        recs[10]["id"],
    ]
    assert docs[2].text.startswith("\U0001f600 ")  # a proper surrogate pair escape is fine
    assert docs[3].meta["orig_source"] == "elsewhere"
    p = str(path)
    assert [where(b) for b in bad] == [
        (p, 3, None, "malformed_json"),
        (p, 4, "text", "invalid_utf8"),
        (p, 5, "text", "lone_surrogate"),
        (p, 6, "text", "missing_field"),
        (p, 7, "text", "empty_text"),
        (p, 8, "text", "not_a_string"),
        (p, 10, None, "not_an_object"),
        (p, 13, "meta", "lone_surrogate"),
    ]
    assert bad[0].excerpt == lines[2][:200].decode()
    assert bad[1].excerpt.startswith(lines[3][:20].decode())
    for b in bad:  # quarantine rows must be writable as UTF-8 whatever the input was
        (b.excerpt + b.detail).encode("utf-8")
    assert "".join("D" if isinstance(x, Document) else "B" for x in items) == "DDBBBBBBBDDBD"  # file order


@pytest.mark.parametrize("codec", ["gz", "zst"])
def test_truncated_file_keeps_every_complete_document(tmp_path, codec):
    source = SAMPLE / "books_gutenberg.jsonl.gz"
    full_ids = [r["id"] for r in raw_records(source)]
    if codec == "gz":
        blob = source.read_bytes()
        recoverable = zlib.decompressobj(wbits=31).decompress(blob[: len(blob) // 2])
    else:
        blob = zstandard.ZstdCompressor().compress(gzip.decompress(source.read_bytes()))
        recoverable = zstandard.ZstdDecompressor().decompressobj().decompress(blob[: len(blob) // 2])
    cut = tmp_path / f"books.jsonl.{codec}"
    cut.write_bytes(blob[: len(blob) // 2])
    complete_lines = recoverable.count(b"\n")
    docs, bad = split(read(cut))
    assert complete_lines > 10
    assert [d.id for d in docs] == full_ids[:complete_lines]
    assert [where(b) for b in bad] == [(str(cut), complete_lines + 1, None, "truncated_file")]


def test_corrupt_gzip_ends_with_corrupt_file(tmp_path):
    blob = bytearray((SAMPLE / "web_dolma_cc.jsonl.gz").read_bytes())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(bytes(blob))
    items = read(path)
    assert isinstance(items[-1], BadRecord) and items[-1].reason == "corrupt_file"
    docs, _ = split(items)
    assert len({d.id for d in docs}) == len(docs) < 30


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_binary_file_is_one_bad_record(tmp_path, fmt):
    path = tmp_path / ("model.jsonl" if fmt == "jsonl" else "model.txt")
    shutil.copy(BINARY, path)
    assert [where(b) for b in read(path, fmt)] == [(str(path), None, None, "binary_file")]


def test_non_default_fields_and_derived_ids(tmp_path):
    records = raw_records(SAMPLE / "multilingual_udhr.jsonl.gz")[:3]
    lines = [
        json.dumps({"doc_key": r["id"] if i else "", "content": r["text"]}) for i, r in enumerate(records)
    ]
    path = write_compressed(tmp_path / "udhr.jsonl", ("\n".join(lines) + "\n\n").encode())
    docs, bad = split(read(path, source="u", text_field="content", id_field="doc_key"))
    assert not bad
    assert [d.id for d in docs] == ["u/udhr.jsonl#1", records[1]["id"], records[2]["id"]]
    assert docs[0].meta == {"orig_id": ""}
    assert [d.text for d in docs] == [r["text"] for r in records]


# --- Parquet -----------------------------------------------------------------------------------


def test_parquet_rows_with_bad_rows_inside(tmp_path):
    records = raw_records(SAMPLE / "web_dolma_cc.jsonl.gz")
    rows = [dict(r, fetched=pa.scalar(1_700_000_000, pa.timestamp("s")).as_py()) for r in records]
    rows[10]["text"] = None
    rows[11]["text"] = "   "
    rows[12]["id"] = None
    path = tmp_path / "dolma.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=16)
    docs, bad = split(read(path, "parquet", source="cc", batch_size=7))
    expected_ids = [r["id"] for r in records]
    expected_ids[12] = "cc/dolma.parquet#12"
    del expected_ids[10:12]
    assert [d.id for d in docs] == expected_ids
    assert [where(b) for b in bad] == [
        (str(path), 10, "text", "missing_field"),
        (str(path), 11, "text", "empty_text"),
    ]
    first = docs[0]
    assert first.text == records[0]["text"] and first.meta["url"] == records[0]["url"]
    assert first.meta["fetched"] == "2023-11-14T22:13:20"
    assert {k: first.meta[k] for k in records[0]["meta"]} == records[0]["meta"]


def test_parquet_reads_grist_document_parquet_back(tmp_path):
    docs = read(SAMPLE / "multilingual_udhr.jsonl.gz", source="udhr-x")
    path = tmp_path / "docs.parquet"
    pq.write_table(docs_to_table(docs), path)
    assert read(path, "parquet", source="udhr-x") == docs


def test_parquet_cut_in_half_is_corrupt(tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pylist(raw_records(SAMPLE / "web_dolma_cc.jsonl.gz")), whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert [where(b) for b in read(cut, "parquet")] == [(str(cut), None, None, "corrupt_file")]


# --- text folder -------------------------------------------------------------------------------


def test_text_folder_one_document_per_file(tmp_path, monkeypatch):
    records = {r["id"]: r for r in raw_records(SAMPLE / "multilingual_udhr.jsonl.gz")}
    folder = tmp_path / "txt"
    langs = ["eng", "fra", "jpn", "rus"]
    for lang in langs:  # the same file name in every folder: ids must use the relative path
        (folder / lang).mkdir(parents=True)
        (folder / lang / "udhr.txt").write_text(records[f"udhr-{lang}"]["text"], encoding="utf-8")
    (folder / "notes.md").write_text("not a .txt file")
    (folder / "empty.txt").write_text(" \n\n")
    shutil.copy(BINARY, folder / "model.txt")
    french = records["udhr-fra"]["text"]
    (folder / "cp1252.txt").write_bytes(french.encode("cp1252", "replace"))
    first_accent = next(i for i, c in enumerate(french) if ord(c) > 127)

    monkeypatch.chdir(tmp_path)
    units = expand_paths("txt", "text")
    names = ["cp1252.txt", "empty.txt", "model.txt"] + [f"{lang}/udhr.txt" for lang in langs]
    assert units == sorted(Path("txt") / name for name in names)
    docs, bad = split([x for unit in units for x in read(unit, "text", source="udhr-txt")])
    assert [d.id for d in docs] == [f"udhr-txt/txt/{lang}/udhr.txt" for lang in sorted(langs)]
    assert [d.text for d in docs] == [records[f"udhr-{lang}"]["text"] for lang in sorted(langs)]
    assert [where(b) for b in bad] == [
        ("txt/cp1252.txt", french[:first_accent].count("\n") + 1, None, "invalid_utf8"),
        ("txt/empty.txt", None, None, "empty_text"),
        ("txt/model.txt", None, None, "binary_file"),
    ]
    # the same id whether the unit comes as a relative or an absolute path
    assert read(tmp_path / "txt" / "eng" / "udhr.txt", "text", source="udhr-txt")[0].id == docs[0].id


# --- Hugging Face datasets ---------------------------------------------------------------------


def test_hf_saved_dataset_and_data_files_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "HF_HUB_OFFLINE", "1"
    )  # never reach the hub (effective if datasets is not yet imported)
    import datasets

    records = raw_records(SAMPLE / "multilingual_udhr.jsonl.gz")
    columns = {k: [r[k] for r in records] for k in ("id", "text", "source", "url", "meta")}
    columns["id"][5] = None

    saved = tmp_path / "udhr_saved"
    datasets.Dataset.from_dict(columns).save_to_disk(str(saved), num_shards=2)
    assert expand_paths(str(saved), "hf") == [saved]
    docs, bad = split(read(saved, "hf", source="udhr", batch_size=10))
    expected = [r["id"] for r in records]
    expected[5] = "udhr/udhr_saved#5"
    assert not bad and [d.id for d in docs] == expected
    assert docs[0].text == records[0]["text"] and docs[0].meta["url"] == records[0]["url"]
    assert docs[0].meta["iso639_3"] == records[0]["meta"]["iso639_3"]

    splits = tmp_path / "udhr_splits"
    half = len(records) // 2
    ds = datasets.Dataset.from_dict(columns)
    datasets.DatasetDict(
        {"train": ds.select(range(half)), "test": ds.select(range(half, len(records)))}
    ).save_to_disk(str(splits))
    with pytest.raises(ValueError, match="split"):
        read(splits, "hf")
    docs, _ = split(read(splits, "hf", source="udhr", split="train"))
    assert [d.id for d in docs] == expected[:5] + ["udhr/udhr_splits/train#5"] + expected[6:half]

    files = tmp_path / "udhr_files"
    files.mkdir()
    (files / "part-0.jsonl").write_bytes(
        b"\n".join(raw_lines(SAMPLE / "multilingual_udhr.jsonl.gz", 20)) + b"\n"
    )
    docs, bad = split(read(files, "hf", source="udhr"))
    assert not bad and [d.id for d in docs] == [r["id"] for r in records[:20]]


# --- WARC / WET --------------------------------------------------------------------------------


def warc_responses(path: Path) -> dict[int, tuple[str, str]]:
    """Record number -> (WARC-Record-ID, url) of each response, read independently with warcio."""
    with open(path, "rb") as f:
        return {
            n: (
                r.rec_headers.get_header("WARC-Record-ID").strip("<>"),
                r.rec_headers.get_header("WARC-Target-URI"),
            )
            for n, r in enumerate(ArchiveIterator(f), 1)
            if r.rec_type == "response"
        }


@pytest.mark.parametrize("extractor", ["trafilatura", "resiliparse"])
@pytest.mark.parametrize("name", sorted(WARC_RESPONSES))
def test_warc_html_to_text(name, extractor):
    path = SAMPLE / "warc" / name
    docs, bad = split(read(path, "warc", source="cc", html_extractor=extractor))
    responses = warc_responses(path)
    assert len(responses) == WARC_RESPONSES[name] == len(docs) + len(bad)
    assert {b.reason for b in bad} <= {"empty_text"}  # every sample response is a 200 HTML page
    assert all(b.line in responses for b in bad)
    kept = [ident_url for n, ident_url in responses.items() if n not in {b.line for b in bad}]
    assert [(d.id, d.meta["url"]) for d in docs] == kept
    assert all(d.text.strip() and d.meta["extractor"] == extractor and d.meta["date"] for d in docs)
    if name.startswith("commoncrawl"):
        assert "Escopete" in docs[0].text


def test_wet_conversion_records():
    docs, bad = split(read(SAMPLE / "warc" / "commoncrawl-whirlwind.warc.wet.gz", "wet", source="cc-wet"))
    assert not bad and len(docs) == 1
    doc = docs[0]
    assert doc.id == "urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d"
    assert doc.meta == {
        "url": "https://an.wikipedia.org/wiki/Escopete",
        "date": "2024-05-18T01:58:10Z",
        "language": "spa",
    }
    assert doc.text.startswith("Escopete - Biquipedia")


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("cut_in", ["response", "request"])
def test_truncated_warc(tmp_path, compressed, cut_in):
    source = SAMPLE / "warc" / "dolma-sample-0000.warc.gz"
    blob = source.read_bytes() if compressed else gzip.decompress(source.read_bytes())
    unpacked = tmp_path / "whole.warc"
    unpacked.write_bytes(blob)
    with open(unpacked, "rb") as f:
        records = ArchiveIterator(f)
        spans = [
            (n, r.rec_type, records.get_record_offset(), records.get_record_length())
            for n, r in enumerate(records, 1)
        ]
    number, _, offset, length = next(s for s in spans if s[0] > 10 and s[1] == cut_in)
    cut = tmp_path / ("cut.warc.gz" if compressed else "cut.warc")
    cut.write_bytes(blob[: offset + length // 2])

    full = read(unpacked, "warc", html_extractor="resiliparse")
    items = read(cut, "warc", html_extractor="resiliparse")
    responses_before = sum(1 for n, kind, _, _ in spans if kind == "response" and n < number)
    assert items[:-1] == full[:responses_before]
    assert where(items[-1]) == (str(cut), number, None, "truncated_file")


def test_warc_responses_that_are_not_pages(tmp_path):
    """Real response payloads rewritten as a 404, a PDF, and an unchanged page, between a
    request and a metadata record (which are not documents)."""
    with open(SAMPLE / "warc" / "commoncrawl-whirlwind.warc.gz", "rb") as f:
        page = next(r for r in ArchiveIterator(f) if r.rec_type == "response")
        url, html = page.rec_headers.get_header("WARC-Target-URI"), page.content_stream().read()
    path = tmp_path / "mixed.warc.gz"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)

        def record(kind: str, status: str = "200 OK", content_type: str = "text/html", body: bytes = html):
            http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
            if kind == "response":
                return writer.create_warc_record(url, kind, payload=io.BytesIO(body), http_headers=http)
            body = b"GET / HTTP/1.1\r\n\r\n" if kind == "request" else b"x: y\r\n"
            return writer.create_warc_record(url, kind, payload=io.BytesIO(body))

        for r in [
            record("request"),
            record("response", status="404 Not Found"),
            record("response", content_type="application/pdf", body=b"%PDF-1.4 real bytes"),
            record("metadata"),
            record("response"),
        ]:
            writer.write_record(r)
    docs, bad = split(read(path, "warc", html_extractor="resiliparse"))
    assert [where(b) for b in bad] == [(str(path), 2, None, "http_status"), (str(path), 3, None, "not_html")]
    assert bad[1].excerpt == "%PDF-1.4 real bytes"
    assert len(docs) == 1 and "Escopete" in docs[0].text and docs[0].meta["url"] == url


def test_not_a_warc_is_corrupt(tmp_path):
    path = tmp_path / "lines.warc"
    path.write_bytes(b"\n".join(raw_lines(SAMPLE / "web_dolma_cc.jsonl.gz", 3)))
    assert [where(b) for b in read(path, "warc")] == [(str(path), 1, None, "corrupt_file")]


# --- speed -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_jsonl_gz_throughput():
    """Decoded MB/s over the sample's .jsonl.gz files (best of 3); the hot path must not be the
    pipeline's bottleneck."""
    files = sorted(SAMPLE.glob("*.jsonl.gz"))
    size = sum(len(gzip.decompress(f.read_bytes())) for f in files)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for f in files:
            for _ in read_source(f, source="s", format="jsonl"):
                pass
        best = min(best, time.perf_counter() - start)
    assert size / best / 1e6 > 50
