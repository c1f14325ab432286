"""The served OpenAPI description is valid OpenAPI 3.1 and describes exactly the routes the
app has, so that it cannot silently drift from them."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs  # schemathesis's own JSON Schema engine
import pytest
import schemathesis

from .openapi_scope import NOT_DESCRIBED, openapi_path

# The description does not depend on the storage backend: one is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def schema_objects(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every Schema Object in the document: component schemas and each `schema` of a
    parameter, header or media type (the 3.1 meta-schema does not look inside them)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" or where == "#/components/schemas":
                yield f"{where}/{key}", value
            else:
                yield from schema_objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schema_objects(value, f"{where}/{index}")


def test_the_description_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    for where, schema in schema_objects(document):
        try:  # OpenAPI 3.1's Schema Objects are JSON Schema 2020-12
            jsonschema_rs.meta.validate({"$schema": DIALECT, **schema})
        except jsonschema_rs.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message}")


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_every_reference_resolves_and_every_operation_id_is_unique(document):
    for ref in set(references(document)):
        node: Any = document
        for step in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and step in node, f"{ref} does not resolve"
            node = node[step]
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


def test_path_parameters_match_their_templates(document):
    for method, path, op in operations(document):
        declared = [*document["paths"][path].get("parameters", []), *op.get("parameters", [])]
        names = {p["name"] for p in declared if p["in"] == "path"}
        assert names == set(re.findall(r"{([^}]+)}", path)), (method, path)


def test_every_route_is_described_and_every_description_is_a_route(app, document):
    routes = {(method, openapi_path(rule.rule))
              for rule in app.url_map.iter_rules() if rule.endpoint not in NOT_DESCRIBED
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(method, path) for method, path, _ in operations(document)}
    assert routes - described == set(), "routes the description leaves out"
    assert described - routes == set(), "described, but no route"


def test_the_description_is_public_with_accounts_on(make_app):
    client = make_app(SLUICE_AUTH="on").test_client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["info"]["title"] == "Sluice"
    assert client.get("/api/v1/threads").status_code == 401  # while the API is not
