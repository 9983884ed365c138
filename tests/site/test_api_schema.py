"""The OpenAPI schema (/api/schema/) documents what the API really takes and answers.

A client generated from it must work: each POST documents its own fields, each
response its own component, the audit list its paged envelope, and the error
answers (400/401/403/404) that the views return.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from annotations.models import Item
from tests.helpers import login

pytestmark = pytest.mark.django_db

REVIEW = "/api/items/{item_id}/reviews/"
RUN_CREATE = "/api/datasets/{dataset_id}/training-runs/"
RUN_DETAIL = "/api/training-runs/{run_id}/"
PROMOTION_CREATE = "/api/model-versions/{model_version_id}/promotion-requests/"
DECISION = "/api/promotion-requests/{id}/decision/"
AUDIT = "/api/audit-events/"
DATASETS = "/api/datasets/"
NEXT_ITEM = "/api/datasets/{dataset_id}/next-item/"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    return schema["components"]["schemas"][ref.rpartition("/")[2]]


def _request_schema(schema: dict[str, Any], path: str) -> dict[str, Any]:
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return _component(schema, body["$ref"])


def _response_ref(schema: dict[str, Any], path: str, method: str, code: str) -> str:
    return schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]["$ref"]


@pytest.mark.parametrize(
    ("path", "fields", "required"),
    [
        (
            REVIEW,
            {"label", "skip", "shown_prediction_id", "reason", "reason_code", "flagged", "uncertain"},
            {"shown_prediction_id"},
        ),
        (
            DECISION,
            {"decision", "password", "reason", "acknowledge_regressions", "override_reason"},
            {"decision", "password"},
        ),
        (PROMOTION_CREATE, {"reason", "acknowledge_regressions", "password", "draft"}, {"reason"}),
        (RUN_CREATE, {"reason"}, set()),
    ],
)
def test_each_post_documents_its_own_fields(schema, path, fields, required):
    body = _request_schema(schema, path)
    assert set(body["properties"]) == fields
    assert set(body.get("required", [])) == required


def test_the_decision_is_documented_as_approve_or_reject(schema):
    decision = _request_schema(schema, DECISION)["properties"]["decision"]
    assert _component(schema, decision["$ref"])["enum"] == ["approve", "reject"]


@pytest.mark.parametrize(
    ("path", "method", "code", "component", "field"),
    [
        (REVIEW, "post", "201", "ReviewCreateOutput", "decision"),
        (DECISION, "post", "200", "PromotionOutput", "decided_by"),
        (PROMOTION_CREATE, "post", "201", "PromotionOutput", "model_version_id"),
        (RUN_CREATE, "post", "201", "TrainingRunOutput", "progress"),
        (RUN_DETAIL, "get", "200", "TrainingRunOutput", "progress"),
        (NEXT_ITEM, "get", "200", "NextItemOutput", "selection_strategy"),
    ],
)
def test_each_response_references_its_own_component(schema, path, method, code, component, field):
    ref = _response_ref(schema, path, method, code)
    assert ref == f"#/components/schemas/{component}"
    assert field in _component(schema, ref)["properties"]
    assert "hash" not in _component(schema, ref)["properties"]  # not the audit event's


def test_the_audit_list_is_a_paged_envelope(schema):
    operation = schema["paths"][AUDIT]["get"]
    page = _component(schema, _response_ref(schema, AUDIT, "get", "200"))
    assert page["type"] == "object"
    assert {"next", "previous", "results"} <= set(page["properties"])
    event = _component(schema, page["properties"]["results"]["items"]["$ref"])
    assert {"seq", "action", "hash", "prev_hash"} <= set(event["properties"])
    assert {"limit", "cursor"} <= {parameter["name"] for parameter in operation["parameters"]}


ERRORS = {
    # path: (method, the error codes the view answers with)
    DATASETS: ("get", {"401", "403"}),
    NEXT_ITEM: ("get", {"401", "403", "404"}),
    REVIEW: ("post", {"400", "401", "403", "404"}),
    RUN_CREATE: ("post", {"400", "401", "403", "404"}),
    RUN_DETAIL: ("get", {"401", "403", "404"}),
    PROMOTION_CREATE: ("post", {"400", "401", "403", "404"}),
    DECISION: ("post", {"400", "401", "403", "404"}),
    AUDIT: ("get", {"400", "401", "403"}),
}


@pytest.mark.parametrize("path", sorted(ERRORS))
def test_error_answers_are_documented(schema, path):
    method, codes = ERRORS[path]
    responses = schema["paths"][path][method]["responses"]
    assert codes <= set(responses)
    for code in codes - {"400"}:
        assert _response_ref(schema, path, method, code) == "#/components/schemas/ErrorDetail"
    if "400" in codes:
        assert _response_ref(schema, path, method, "400") == "#/components/schemas/ValidationError"


def test_the_documented_error_shapes_match_the_real_answers(schema, reviewer, outsider):
    """A 403/404 is {"detail": ...}; a 400 is {field: [messages]} or, from a service, a list of messages."""
    detail = _component(schema, "#/components/schemas/ErrorDetail")
    assert detail["required"] == ["detail"]
    validation = _component(schema, "#/components/schemas/ValidationError")
    kinds = {option["type"] for option in validation["anyOf"]}
    assert kinds == {"object", "array"}

    client = login(reviewer)
    # A missing id is answered like one in another dataset (a 403), so ids cannot be probed.
    missing = client.get("/api/datasets/999999/next-item/")
    assert missing.status_code == 403
    assert set(missing.json()) == {"detail"}
    bad = client.post("/api/items/999999/reviews/", {}, content_type="application/json")
    assert bad.status_code == 403
    anonymous = login(outsider)
    anonymous.logout()
    assert anonymous.get("/api/datasets/").status_code == 401


def _validate(schema: dict[str, Any], component: str, body: Any) -> None:
    validator = jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{component}", "components": schema["components"]}
    )
    validator.validate(body)


def test_real_error_answers_match_their_documented_components(schema, trained_dataset, reviewer):
    """What schemathesis checks in `make api-fuzz`, here for the two shapes of a 400 and for a 403."""
    client = login(reviewer)
    item = Item.objects.filter(dataset=trained_dataset, queue_state="open").first()
    not_handed_out = client.post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "benign", "shown_prediction_id": None},
        content_type="application/json",
    )
    assert not_handed_out.status_code == 400
    assert isinstance(not_handed_out.json(), list)  # a service rule: a list of messages
    _validate(schema, "ValidationError", not_handed_out.json())
    missing_field = client.post(f"/api/items/{item.pk}/reviews/", {}, content_type="application/json")
    assert missing_field.status_code == 400
    assert "shown_prediction_id" in missing_field.json()  # a field rule: messages per field
    _validate(schema, "ValidationError", missing_field.json())
    missing = client.get("/api/datasets/999999/next-item/")
    assert missing.status_code == 403  # as for a dataset the reviewer is not a member of
    _validate(schema, "ErrorDetail", missing.json())
    not_a_model_admin = client.get("/api/training-runs/999999/")
    assert not_a_model_admin.status_code == 403
    _validate(schema, "ErrorDetail", not_a_model_admin.json())
    with pytest.raises(ValueError):
        _validate(schema, "ErrorDetail", {"unexpected": "shape"})


def test_the_served_schema_needs_credentials_and_is_the_generated_one(schema, reviewer):
    assert Client().get("/api/schema/").status_code == 401
    served = login(reviewer).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert served.status_code == 200
    served_schema = json.loads(served.content)
    assert set(served_schema["paths"]) == set(schema["paths"])
    assert (
        served_schema["paths"][REVIEW]["post"]["responses"]["400"]
        == schema["paths"][REVIEW]["post"]["responses"]["400"]
    )
