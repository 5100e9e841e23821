"""Where inputs live: local paths or fsspec URLs (`s3://`, `gs://`, `hf://`, `file://`, ...).

A local path stays a `pathlib.Path`; a URL becomes a `upath.UPath`, which has the same API
(`open`, `stat`, `name`, `glob`) over the URL's fsspec file system, so readers and the unit
planner call one API for both. Credentials and endpoints come from each file system's usual
configuration (for S3: the AWS environment variables or ~/.aws, `AWS_ENDPOINT_URL` for an
S3-compatible server), never from a recipe.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from upath import UPath

AnyPath = Path | UPath  # what an input is: a local path or a URL's UPath

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for a URL other than file:// (which is a local path)."""
    m = _URL.match(os.fspath(path))
    return m is not None and m.group(1) != "file"


def as_path(path: str | os.PathLike[str]) -> AnyPath:
    """A Path for a local path or file:// URL, a UPath for any other URL."""
    if isinstance(path, Path | UPath):
        return path
    text = os.fspath(path)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return UPath(text) if is_url(text) else Path(text)


def glob(pattern: str) -> list[AnyPath]:
    """Matches of a glob: local (relative to the current directory, `**` recursive) or remote."""
    if not is_url(pattern):
        import glob as local_glob

        local = pattern.removeprefix("file://")
        return [Path(p) for p in local_glob.glob(os.path.expanduser(local), recursive=True)]
    root = UPath(pattern)
    protocol = pattern.split("://", 1)[0]
    return [UPath(f"{protocol}://{p}", **root.storage_options) for p in root.fs.glob(root.path)]


def identity(path: UPath) -> dict[str, Any]:
    """What identifies a remote object's content without reading it: its size and the store's
    checksum or version tag (ETag, md5, generation), whichever it reports."""
    info = path.fs.info(path.path)
    tag = next((str(info[k]) for k in ("ETag", "etag", "md5Hash", "md5", "generation") if k in info), None)
    return {"path": str(path), "bytes": info.get("size"), "etag": tag}
