"""Small pieces the description is assembled from: references, closed objects, and the
error responses that many operations share.

Which errors an operation can answer follows from what it is, as the HTTP edge
(services/web/) and the auth layer (services/auth/) decide them for every route
alike: any request can be refused at the edge (400, 414, 431); one that reads a
JSON body can be malformed (400) or too large (413); a state-changing one can come
from a foreign origin (403) or carry a non-JSON body (415); one that needs a user
can lack credentials (401) or, with the cookie, its CSRF token (403). `responses`
adds those, so each operation lists only what is its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

# Error codes the edge can answer any request with (services/web/guards.py and
# gunicorn's own refusals, services/server/worker.py).
EDGE_400 = ("invalid_host", "malformed_request", "unsupported_transfer_coding")
# ... and those of a request whose JSON body is read (services/web/body.py).
BODY_400 = ("invalid_json", "invalid_encoding", "invalid_text", "too_deeply_nested",
            "invalid_number", "malformed_body")


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null, written the OpenAPI 3.1 way (no `nullable` keyword)."""
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    result = {**schema, "type": [*types, "null"]}
    if "enum" in schema:
        result["enum"] = [*schema["enum"], None]
    return result


def closed(properties: dict[str, Schema], *, optional: tuple[str, ...] = (),
           description: str | None = None) -> Schema:
    """An object with exactly these properties, all required but `optional`: the shape
    of what the server writes, where no other field ever appears."""
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    schema["required"] = [name for name in properties if name not in optional]
    schema["properties"] = properties
    schema["additionalProperties"] = False
    return schema


def json_content(schema: Schema) -> dict[str, Any]:
    """A `content` map of one JSON media type: every body Sluice reads or writes but streams."""
    return {"application/json": {"schema": schema}}


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    """A JSON answer; the description says when it is given, the schema what it holds."""
    return {"description": description, "content": json_content(schema)}


def with_links(response: dict[str, Any], parameter: str, pointer: str,
               *operation_ids: str) -> dict[str, Any]:
    """`response` with OpenAPI links: its object's id (at JSON `pointer` in the body) is the
    `parameter` of each of those operations. Readers see what follows; schemathesis walks
    them to build request sequences on real objects."""
    links = {op_id[0].upper() + op_id[1:]: {"operationId": op_id,
                                            "parameters": {parameter: f"$response.body#{pointer}"}}
             for op_id in operation_ids}
    return {**response, "links": {**response.get("links", {}), **links}}


def json_body(schema: Schema, *, required: bool = True) -> dict[str, Any]:
    """A JSON request body; `required=False` where an empty body means `{}`."""
    return {"required": required, "content": json_content(schema)}


def _codes(codes: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{code}`" for code in codes)


@dataclass
class Errors:
    """The error statuses of one operation, each with the codes that explain it."""

    codes: dict[int, list[str]] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)

    def add(self, status: int, *codes: str, note: str | None = None) -> Errors:
        self.codes.setdefault(status, []).extend(c for c in codes if c not in self.codes[status])
        if note:
            self.notes.setdefault(status, []).append(note)
        return self

    def responses(self) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for status in sorted(self.codes):
            text = " ".join([f"Error codes: {_codes(self.codes[status])}.",
                             *self.notes.get(status, [])])
            answers[str(status)] = {"description": text, "content": json_content(ref("Error"))}
            if status == 429:
                answers[str(status)]["headers"] = {"Retry-After": {
                    "description": "Seconds to wait before sending it again.",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
            if status == 401:
                answers[str(status)]["headers"] = {"WWW-Authenticate": {
                    "description": "Always `Bearer realm=\"…\"`.",
                    "schema": {"type": "string", "pattern": "^Bearer "}}}
        return answers


def errors(*, reads_body: bool = False, changes: bool = False, public: bool = False,
           own: dict[int, tuple[str, ...]] | None = None) -> Errors:
    """The errors an operation shares with every other of its kind, then its `own`."""
    found = Errors()
    found.add(400, *EDGE_400, note="`invalid_host` and the malformed requests can be the "
                                   "answer to any request, before it reaches a route.")
    if reads_body:
        found.add(400, *BODY_400, note="The body must be a JSON object whose text can be "
                                       "stored, nested at most 64 deep.")
        found.add(413, "payload_too_large",
                  note="The body is over `SLUICE_MAX_REQUEST_BYTES`; nothing was changed.")
    if changes:
        found.add(403, "forbidden_origin",
                  note="A state-changing request from another site (`Origin`, "
                       "`Sec-Fetch-Site`).")
        found.add(415, "unsupported_media_type",
                  note="A request body must be sent as `Content-Type: application/json`.")
    if not public:
        found.add(401, "unauthorized",
                  note="With `SLUICE_AUTH=on`: no credentials, or an unknown, revoked or "
                       "expired key. Never with `SLUICE_AUTH=off`.")
        found.add(429, "rate_limited",
                  note="Over the user's or the key's requests a minute (`SLUICE_USER_RPM`, "
                       "`SLUICE_KEY_RPM`, a key's `rpm`): wait `Retry-After` seconds.")
        if changes:
            found.add(403, "csrf_failed",
                      note="Made with the session cookie but without its `X-CSRF-Token`.")
    found.add(414, "uri_too_long", note="Over gunicorn's request-line limit.")
    found.add(431, "headers_too_large", note="Over gunicorn's header limits.")
    for status, codes in (own or {}).items():
        found.add(status, *codes)
    return found


def operation(operation_id: str, summary: str, tag: str, ok: dict[str, Any], errs: Errors, *,
              description: str | None = None, body: dict[str, Any] | None = None,
              parameters: list[dict[str, Any]] | None = None,
              security: list[dict[str, list[str]]] | None = None) -> dict[str, Any]:
    """One operation: its successful answers (`ok`, by status) and its errors."""
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    answers = {**ok, **errs.responses()}
    op["responses"] = {status: answers[status] for status in sorted(answers)}
    if security is not None:
        op["security"] = security
    return op


def path_id(name: str, what: str) -> dict[str, Any]:
    """An id in the path: what the router accepts there (services/web/params.py); any
    other segment is a 404 before the route."""
    return {"name": name, "in": "path", "required": True, "description": what,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"}}


# Who may call: a program's key, or the page's cookie session (with its CSRF token when
# the request changes something). `PUBLIC` needs nothing.
READ_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"session": []}]
WRITE_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"session": [], "csrfToken": []}]
PUBLIC: list[dict[str, list[str]]] = []
