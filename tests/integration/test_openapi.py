"""Schemathesis against the app's own OpenAPI schema: whatever the schema allows, no 5xx.

Half the generated requests carry a valid form token and a real manage link, so that generated
input reaches the pages' own checks, not only the CSRF and token refusals.
"""

from __future__ import annotations

import hashlib

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from digest.usecases import subscribers as accounts
from digest.web import Web, create_app
from tests.support.data import NOW
from tests.support.store import add_subscriber, context, ingest_fixture

CSRF = "c" * 43


@pytest.fixture
def manage_token(sessions, mail_settings) -> str:
    ingest_fixture(sessions)
    subscriber_id = add_subscriber(sessions)
    return accounts.new_manage_token(context(mail_settings, sessions), subscriber_id, NOW)


@pytest.fixture
def api_schema(mail_settings, sessions, manage_token):
    settings = mail_settings.model_copy(update={"base_url": "http://localhost"})
    app = create_app(Web(context(settings, sessions, lambda: NOW)))
    app.state.manage_token = manage_token
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_request_the_schema_allows_makes_the_server_fail(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10  # every page is in the schema
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case) -> None:
            generated = repr(sorted((case.path_parameters or {}).items())) + repr(case.body)
            if hashlib.sha256(generated.encode()).digest()[0] % 2:
                case.cookies = {"digest_csrf": CSRF}
                if isinstance(case.body, dict) and "csrf" in case.body:
                    case.body["csrf"] = CSRF
                if case.path_parameters and "token" in case.path_parameters:
                    case.path_parameters["token"] = api_schema.app.state.manage_token
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
