"""The OpenAPI document is a contract: schemathesis generates requests for every operation
from the running app's own schema, and every answer must be documented and not a 5xx.

Generation is derandomized (the same cases every run) and does not shrink, and the app
runs with small limits so that generated texts stay cheap for the tiny models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.app.conftest import make_settings
from tests.servers import LiveServer

# Generated text in PNG attention maps uses every script; the font lacks most of them.
pytestmark = pytest.mark.filterwarnings("ignore:Glyph .* missing from font")

CASES_PER_OPERATION = 300
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PAIRS = [("en", "de"), ("auto", "de")]  # served by the tiny models (langid picks the source)
OPERATIONS = [
    "POST /translate",
    "POST /translate_file",
    "GET /download_file/{name}",
    "POST /detect",
    "POST /suggest",
    "GET /frontend/settings",
    "GET /languages",
    "POST /sentiment",
    "POST /attention-map",
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /models",
]


@pytest.fixture(scope="module")
def live_schema(
    trained_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BaseSchema]:
    """The app under uvicorn on the tiny models, and the schema it serves."""
    app_settings = make_settings(
        trained_root,
        data_dir=tmp_path_factory.mktemp("contract-data"),
        max_text_chars=64,
        max_items_per_request=4,
        max_body_bytes=4_096,
        max_output_tokens=12,
    )
    with LiveServer(create_app(app_settings)) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def with_pair(case: Case, pair: tuple[str, str]) -> Case:
    """A schema-valid body with a language pair the models serve, so that generated texts
    reach the models (random codes would mostly stop at 400)."""
    if isinstance(case.body, dict):
        case.body = {**case.body, "source": pair[0], "target": pair[1]}
    return case


def fuzz(operation: APIOperation, cases: int) -> list[Case]:
    """Sends `cases` generated requests: schema-valid ones, schema-valid ones with a served
    language pair where the body has one, and schema-invalid ones where there is a body to
    break. Each answer goes through CHECKS; returns the cases sent."""
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    strategies = [positive]
    if operation.body:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    if operation.label in ("POST /translate", "POST /attention-map", "POST /suggest"):
        strategies.append(st.builds(with_pair, positive, st.sampled_from(PAIRS)))
    strategy = st.one_of(strategies)
    sent: list[Case] = []

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # no shrinking: a failure reports the case as generated
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def send(case: Case) -> None:
        sent.append(case)
        case.call_and_validate(checks=CHECKS)

    send()
    return sent


def test_the_schema_lists_every_operation(live_schema: BaseSchema) -> None:
    labels = [result.ok().label for result in live_schema.get_all_operations()]
    assert sorted(labels) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_generated_requests_get_documented_answers_and_no_5xx(
    live_schema: BaseSchema, label: str
) -> None:
    operation = live_schema.find_operation_by_label(label)
    assert operation is not None
    sent = fuzz(operation, CASES_PER_OPERATION)
    assert len(sent) >= CASES_PER_OPERATION
    # Distinct requests, not one case repeated.
    distinct = {(repr(c.body), repr(c.headers), repr(c.path_parameters)) for c in sent}
    assert len(distinct) >= CASES_PER_OPERATION // 2
