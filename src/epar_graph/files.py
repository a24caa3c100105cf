"""Facts about files that several stages state: so far, their SHA-256 checksum.

The build writes checksums into ``void.ttl`` (sources and dumps), the link stage
into its link-set descriptions, the server into its download listing and ETags,
and the query store keys its cache by them. They must agree byte for byte, so
they come from this one function.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as lower-case hex (what ``sha256sum`` prints).

    ``hashlib.file_digest`` reads the file in blocks (never whole into memory) and
    releases the GIL while hashing, so a server thread checking a large dump does
    not stall the others.
    """
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
