"""Dump files of the build, served as they are: ``/downloads/``, ``/context.jsonld``, ``/.well-known/void``.

Only files whose names match the release layout are listed or served, so
nothing else in the data directory (the store cache, stray files) leaks out
and a crafted name cannot walk out of it. Each file carries a strong ETag (its
SHA-256), Last-Modified, and answers conditional GETs with 304, so mirrors and
scripts can poll cheaply; the listing gives the same checksums for
verification after download. The listing and the VoID page render through
``serve/site_html.py``, so they carry the site's header, search box and
security headers like every other page.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from epar_graph.files import sha256_file
from epar_graph.serve import negotiation, site_html
from epar_graph.serve.settings import Settings

router = APIRouter(tags=["Downloads"])

#: Names a release may contain (see publish.py); anything else is not served.
_SERVABLE = re.compile(
    r"(?:epar\.(?:ttl|nt|jsonld)|context\.jsonld|void\.ttl|rejections\.csv|warnings\.csv|changes\.nt"
    r"|links-[A-Za-z0-9_-]+\.nt)(?:\.gz)?"
)
_MEDIA_TYPES = {
    ".ttl": "text/turtle; charset=utf-8",
    ".nt": "application/n-triples",
    ".jsonld": "application/ld+json",
    ".csv": "text/csv; charset=utf-8",
    ".gz": "application/gzip",
}
_ORDER = ("epar.ttl", "epar.nt", "epar.jsonld", "context.jsonld", "void.ttl", "changes.nt")
#: Paths whose bodies are files: GZip middleware leaves them alone so bytes match ETag and SHA-256.
FILE_PATH_PREFIXES = ("/downloads/", "/context.jsonld", "/.well-known/void")


@dataclass(frozen=True)
class DumpFile:
    name: str
    path: Path
    size: int
    sha256: str
    modified: dt.datetime
    media_type: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'

    @property
    def last_modified(self) -> str:
        return email.utils.format_datetime(self.modified, usegmt=True)

    def as_json(self, url: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": url,
            "size": self.size,
            "sha256": self.sha256,
            "lastModified": self.modified.isoformat().replace("+00:00", "Z"),
            "mediaType": self.media_type,
        }


_digests: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, computed once per (path, size, mtime)."""
    key = (str(path), size, mtime_ns)
    with _digest_lock:
        cached = _digests.get(key)
    if cached is not None:
        return cached
    value = sha256_file(path)
    with _digest_lock:
        _digests[key] = value
    return value


def media_type(name: str) -> str:
    return _MEDIA_TYPES[Path(name).suffix]


def dump_file(data_dir: Path, name: str) -> DumpFile | None:
    """The servable file ``name`` of ``data_dir``, or None."""
    if not _SERVABLE.fullmatch(name):
        return None
    path = data_dir / name
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    modified = dt.datetime.fromtimestamp(int(stat.st_mtime), tz=dt.UTC)
    return DumpFile(name, path, stat.st_size, _sha256(path, stat.st_size, stat.st_mtime_ns), modified, media_type(name))


def list_dumps(data_dir: Path) -> list[DumpFile]:
    """Every servable file of the build, main dumps first."""
    try:
        names = [p.name for p in data_dir.iterdir() if _SERVABLE.fullmatch(p.name)]
    except OSError:
        return []
    rank = {n: i for i, n in enumerate(_ORDER)}
    names.sort(key=lambda n: (rank.get(n.removesuffix(".gz"), len(_ORDER)), n))
    return [f for f in (dump_file(data_dir, n) for n in names) if f is not None]


def not_modified(request: Request, file: DumpFile) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == file.etag for t in tags)
    since = request.headers.get("if-modified-since")
    if since:
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return file.modified <= when
    return False


def file_response(request: Request, file: DumpFile) -> Response:
    headers = {
        "ETag": file.etag,
        "Last-Modified": file.last_modified,
        "Cache-Control": "public, max-age=300",
    }
    if not_modified(request, file):
        return Response(status_code=304, headers=headers)
    return FileResponse(file.path, media_type=file.media_type, headers=headers)


def _not_found(name: str) -> Response:
    return PlainTextResponse(f"No downloadable file named {name!r}.\n", status_code=404)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file.",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(set(_MEDIA_TYPES.values()))},
    },
    304: {"description": "Not modified since the ETag or date the client has."},
    404: {"description": "No such file in this release.", "content": {"text/plain": {"schema": {"type": "string"}}}},
}


@router.api_route(
    "/downloads/",
    methods=["GET"],
    summary="List the dump files with size, SHA-256 and date (HTML or JSON)",
    response_class=Response,
    responses={
        200: {
            "description": "The listing.",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {"files": {"type": "array", "items": {"type": "object"}}},
                    }
                },
            },
        },
        406: {
            "description": "Neither HTML nor JSON is acceptable.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
)
async def downloads_index(request: Request) -> Response:
    files = list_dumps(_settings(request).data_dir)
    chosen = negotiation.negotiate(request.headers.get("accept"), ["text/html", "application/json"])
    if chosen is None:
        return PlainTextResponse(
            "The listing is available as text/html or application/json.\n", status_code=406, headers={"Vary": "Accept"}
        )
    base = str(request.url_for("download_file", name="x"))[:-1]
    if chosen == "application/json":
        return JSONResponse({"files": [f.as_json(base + f.name) for f in files]}, headers={"Vary": "Accept"})
    return site_html.render_html("downloads.html", {"files": files}, request)  # the site's layout and headers


@router.api_route(
    "/downloads/{name}",
    methods=["GET"],
    name="download_file",
    summary="One dump file, with ETag / Last-Modified and conditional GET",
    response_class=Response,
    responses=_FILE_RESPONSES,
)
async def download_file(request: Request, name: str) -> Response:
    file = dump_file(_settings(request).data_dir, name)
    return _not_found(name) if file is None else file_response(request, file)


@router.api_route(
    "/context.jsonld",
    methods=["GET"],
    summary="The JSON-LD context of the JSON-LD dump",
    response_class=Response,
    responses=_FILE_RESPONSES,
)
async def jsonld_context(request: Request) -> Response:
    file = dump_file(_settings(request).data_dir, "context.jsonld")
    return _not_found("context.jsonld") if file is None else file_response(request, file)


@router.api_route(
    "/.well-known/void",
    methods=["GET"],
    summary="The VoID description of the dataset (RFC 5785 well-known location); HTML for browsers",
    response_class=Response,
    responses={**_FILE_RESPONSES, 200: {"description": "The description: Turtle, or a page for a browser.",
                                        "content": {"text/turtle": {"schema": {"type": "string"}},
                                                    "text/html": {"schema": {"type": "string"}}}}},
)
async def well_known_void(request: Request) -> Response:
    """Turtle for programs; for a browser (HTML preferred over Turtle) a readable page."""
    data_dir = _settings(request).data_dir
    file = dump_file(data_dir, "void.ttl")
    if file is None:
        return _not_found("void.ttl")
    accept = request.headers.get("accept")
    if accept and negotiation.negotiate(accept, ["text/turtle", "text/html"]) == "text/html":
        from epar_graph.serve.void_view import read_void

        view = read_void(file.path)
        if view is not None:
            return site_html.render_html("void.html", {"view": view}, request)
    response = file_response(request, file)
    response.headers["Vary"] = "Accept"
    return response


# HEAD answers like GET without a body; kept out of the OpenAPI description to keep operation ids unique.
for _path, _endpoint in (
    ("/downloads/{name}", download_file),
    ("/context.jsonld", jsonld_context),
    ("/.well-known/void", well_known_void),
):
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False, response_class=Response)
