"""Property-based API tests: schemathesis drives /sparql and /downloads from the app's own OpenAPI schema.

Every generated request (valid and invalid by the schema) must get a documented
status and content type, a body matching the documented schema, and never a 5xx.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from conftest import SERVE_DATA, LiveServer
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from epar_graph.serve import create_app
from epar_graph.serve.settings import Settings
from epar_graph.serve.sparql import SPARQL_QUERY


@schemathesis.serializer(SPARQL_QUERY)
def _sparql_query_body(ctx: Any, value: Any) -> bytes:
    """Direct POST bodies are the query text itself."""
    return value.encode("utf-8") if isinstance(value, str) else str(value).encode("utf-8")


def _openapi() -> dict[str, Any]:
    """The schema the app publishes at /openapi.json (built from the app object: no server needed yet)."""
    return create_app(Settings(data_dir=SERVE_DATA)).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).include(path_regex=r"^/(sparql|downloads/)")


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, live_server: LiveServer) -> None:
    # "Schema-valid data is accepted" cannot hold here: any string fits the schema of ``query``,
    # but only SPARQL is a query, so a 400 for random text is the correct answer.
    case.call_and_validate(base_url=live_server.url, timeout=60, excluded_checks=[positive_data_acceptance])


def test_published_schema_is_the_tested_one(client: Any) -> None:
    assert client.get("/openapi.json").json() == _openapi()
