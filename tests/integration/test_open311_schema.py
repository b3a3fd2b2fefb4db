"""The Open311 API driven by its own OpenAPI document (Schemathesis): every operation the served document
describes gets generated requests — valid ones, and ones that break the document's constraints — and every
answer must be no server error and match the schema the document gives for its status code.

The document is fetched from the running app (``/open311/v2/openapi.json``) as another system would, so a
route that drifts from the document fails here. A real store on either backend; each case runs with a key
of the 12345 channel for the whole area (``api_key`` is generated too, so the unkeyed paths are tried).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.applications import Starlette

from api.open311 import make_routes
from tests.open311_server import square_store


@pytest.fixture(scope="module")
def api_store(new_store_url):
    with square_store(new_store_url()) as (engine, key):
        yield engine, key("12345", "990001")[1]


@pytest.fixture(scope="module")
def api_schema(api_store):
    engine, _ = api_store
    app = Starlette(routes=make_routes(lambda: engine))
    return schemathesis.openapi.from_asgi("/open311/v2/openapi.json", app)


def _operations(schema) -> list:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5, [f"{op.method} {op.path}" for op in operations]  # the document's five
    return operations


def _keyed(case, key: str) -> None:
    """The channel's real key wherever the generated case carries one."""
    if case.query is not None and "api_key" in case.query:
        case.query["api_key"] = key
    if isinstance(case.body, dict) and "api_key" in case.body:
        case.body["api_key"] = key


@pytest.mark.parametrize("keyed", [False, True], ids=["generated_key", "channel_key"])
def test_every_documented_operation_answers_within_its_schema_and_never_with_a_server_error(
    api_schema, api_store, keyed
):
    """Generated requests for each operation (positive and negative: values outside the document's types,
    enums and lengths); with ``keyed`` the channel's real key is put in, so filing, reading back and
    scope are reached, not only the 403 of an unknown key. Checks: no 5xx, status code documented,
    content type and body as the document says."""
    _, key = api_store
    for operation in _operations(api_schema):

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            if keyed:
                _keyed(case, key)
            # A schema-valid POST may still be refused by the rules the document cannot state (a point
            # outside the area, a category outside the key's): 400 with the Chinese reason is right there.
            business = case.method == "POST" and keyed
            case.call_and_validate(excluded_checks=[positive_data_acceptance] if business else None)

        check()
