"""The knobs of the web server, in one frozen object shared by every router.

Defaults are safe for a public endpoint (bounded time, rows and request size,
no federation); each one can be changed from the environment so that a
deployment does not need a code change. ``request.app.state.settings`` holds
the instance the running app uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from epar_graph.iris import IriError, Minter
from epar_graph.release import NotARelease, recorded_minter, store_cache_dir

#: Environment variables read by :meth:`Settings.from_env`, by field name.
ENV_VARS = {
    "query_timeout": "EPAR_QUERY_TIMEOUT",
    "max_rows": "EPAR_MAX_ROWS",
    "max_request_bytes": "EPAR_MAX_REQUEST_BYTES",
    "workers": "EPAR_QUERY_WORKERS",
    "service_allowlist": "EPAR_SERVICE_ALLOWLIST",
    "store_dir": "EPAR_STORE_DIR",
    "store_url": "EPAR_STORE_URL",
    "slow_workers": "EPAR_SLOW_QUERIES",
    "fast_lane_seconds": "EPAR_FAST_LANE_SECONDS",
    "max_connections": "EPAR_MAX_CONNECTIONS",
    "max_header_bytes": "EPAR_MAX_HEADER_BYTES",
    "follow_seconds": "EPAR_FOLLOW_SECONDS",
    "processes": "EPAR_SERVER_PROCESSES",
    "answer_cache_mb": "EPAR_ANSWER_CACHE_MB",
}


def default_processes() -> int:
    """One server process per core the server may use, at most 4 (measured: ``benchmarks/serve_load.py``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


class SettingsError(ValueError):
    """A setting has a value the server cannot work with."""


@dataclass(frozen=True)
class Settings:
    """What the server needs to know beyond the data directory.

    ``max_rows`` caps SELECT solutions and CONSTRUCT/DESCRIBE triples; a capped
    answer carries the header ``X-Result-Truncated: true`` (see ``serve/sparql.py``).
    ``service_allowlist`` holds the only endpoint IRIs a federated ``SERVICE``
    may call: empty means federation is off, because an open endpoint that
    fetches arbitrary URLs is a request-forgery relay.

    Lanes (see ``serve/store.py``): every query starts on one of the ``workers``
    fast workers; one still running after ``fast_lane_seconds`` moves, worker and
    all, to the slow lane, which holds at most ``slow_workers`` such queries at a
    lower CPU priority, and the fast lane gets a fresh worker. When the slow lane
    is full the query is stopped with 503. ``slow_workers=0`` keeps every query
    on its fast worker until its time limit (no lanes). Measured with
    ``benchmarks/mixed_load.py --disguise`` on two cores (200 requests/s, 5%
    runaway queries each differing from the others, before the grace for a full
    slow lane was added): 2 workers and 0.25 s gave cheap lookups a p99 of
    573 ms, 2 and 0.05 s 204 ms, 4 and 0.1 s 158 ms, 4 and 0.05 s 60 ms.

    ``max_connections`` bounds open connections and requests in progress (503
    beyond it); ``max_header_bytes`` bounds a request's header fields (431) —
    the URL is bounded by ``max_request_bytes`` (414).
    """

    data_dir: Path
    query_timeout: float = 30.0
    max_rows: int = 100_000
    max_request_bytes: int = 1_000_000
    workers: int = 4
    service_allowlist: frozenset[str] = field(default_factory=frozenset)
    store_dir: Path | None = None
    #: A SPARQL 1.1 query endpoint to use instead of the embedded store (``serve --store``).
    store_url: str | None = None
    #: Entity IRIs' base: empty means the one the release records (``void.ttl``), else the default.
    base: str = ""
    cors_origins: tuple[str, ...] = ("*",)
    slow_workers: int = 2
    fast_lane_seconds: float = 0.05
    max_connections: int = 256
    max_header_bytes: int = 16 * 1024
    #: How often the embedded store looks for a new build in ``data_dir`` (``serve/following.py``); 0: never.
    follow_seconds: float = 2.0
    #: Server processes sharing the listening socket (``serve/replicas.py``), each with ``workers`` query workers.
    processes: int = field(default_factory=default_processes)
    #: Megabytes of answers each store keeps for repeated queries (``AnswerCache`` in ``serve/store.py``); 0: none.
    answer_cache_mb: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self._resolved_base())
        if not self.query_timeout > 0:
            raise SettingsError(f"query timeout must be positive, got {self.query_timeout}")
        if self.max_rows < 1:
            raise SettingsError(f"max rows must be at least 1, got {self.max_rows}")
        if self.max_request_bytes < 1024:
            raise SettingsError(f"max request size must be at least 1024 bytes, got {self.max_request_bytes}")
        if self.workers < 1:
            raise SettingsError(f"query workers must be at least 1, got {self.workers}")
        if self.slow_workers < 0:
            raise SettingsError(f"slow queries must be 0 or more, got {self.slow_workers}")
        if not self.fast_lane_seconds > 0:
            raise SettingsError(f"fast lane seconds must be positive, got {self.fast_lane_seconds}")
        if self.max_connections < 4:
            raise SettingsError(f"max connections must be at least 4, got {self.max_connections}")
        if self.answer_cache_mb < 0:
            raise SettingsError(f"answer cache megabytes must be 0 (off) or more, got {self.answer_cache_mb}")
        if self.processes < 1:
            raise SettingsError(f"server processes must be at least 1, got {self.processes}")
        if self.follow_seconds < 0:
            raise SettingsError(f"follow seconds must be 0 (off) or more, got {self.follow_seconds}")
        if self.max_header_bytes < 1024:
            raise SettingsError(f"max header size must be at least 1024 bytes, got {self.max_header_bytes}")

    def _resolved_base(self) -> str:
        try:
            if self.base:
                return Minter(self.base).base
            return (recorded_minter(self.data_dir) or Minter()).base
        except (IriError, NotARelease) as exc:
            raise SettingsError(str(exc)) from None

    @property
    def iris(self) -> Minter:
        """Mints and recognises the served graph's IRIs."""
        return Minter(self.base)

    @property
    def resolved_store_dir(self) -> Path:
        """Where loaded stores are kept: ``DATA/.store`` unless set."""
        return self.store_dir if self.store_dir is not None else store_cache_dir(self.data_dir)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, data_dir: Path, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``EPAR_*`` environment variables, then explicit ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or not raw.strip():
                continue
            values[name] = _parse_env(name, var, raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(data_dir=data_dir, **values)


def _parse_env(name: str, var: str, raw: str) -> Any:
    try:
        if name in ("query_timeout", "fast_lane_seconds", "follow_seconds"):
            return float(raw)
        if name in ("max_rows", "max_request_bytes", "workers", "slow_workers", "max_connections", "max_header_bytes",
                    "processes", "answer_cache_mb"):
            return int(raw)
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a number") from None
    if name == "service_allowlist":
        return frozenset(raw.replace(",", " ").split())
    if name == "store_url":
        return raw
    return Path(raw)
