"""The OpenAPI document: valid (openapi-spec-validator), and true: every endpoint's live
answers, success and errors, validate against it (openapi-core), and every documented
operation is exercised here, so a new endpoint cannot go untested."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import uuid

import jsonschema
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate as validate_spec

from .conftest import ADMIN_KEY, AGENT_KEY, CUSTOMER_KEY, WEBHOOK_SECRET

MCP_ACCEPT = "application/json, text/event-stream"


def signed_webhook(body: dict) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + raw, hashlib.sha256).digest())
    return raw, {
        "X-Zendesk-Webhook-Signature": sig.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


def test_the_document_is_valid_openapi(openapi):
    validate_spec(openapi)
    assert openapi["openapi"].startswith("3.1")
    paths = openapi["paths"]
    for path in [
        "/v1/search",
        "/v1/context",
        "/v1/articles/{id}",
        "/v1/verify",
        "/v1/admin/sync",
        "/v1/admin/reindex",
        "/v1/admin/status",
        "/v1/admin/jobs/{id}",
        "/v1/webhooks/zendesk",
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
        "/mcp",
        "/openapi.json",
    ]:
        assert path in paths, path
    # Every operation documents its success answer with a schema, and its errors.
    for path, item in paths.items():
        for method, op in item.items():
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, f"{method} {path} documents no success"
            assert "default" in op["responses"], f"{method} {path} documents no error shape"
    hit = openapi["components"]["schemas"]["Hit"]["properties"]
    for field in ["brand", "url", "content_hash", "visibility", "text", "snippet", "highlights"]:
        assert field in hit, field
    search_params = {p["name"] for p in paths["/v1/search"]["get"]["parameters"]}
    assert {"q", "audience", "locale", "limit", "segments", "signed_in"} <= search_params


class Recorder:
    """Sends requests, validates each answer against the document, and remembers which
    documented operations were exercised."""

    def __init__(self, server, spec: dict):
        self.server = server
        self.spec = spec
        self.api = OpenAPI.from_dict(spec)
        self.seen: set[tuple[str, str]] = set()

    def send(self, method, path, *, key=None, template=None, params=None, body=None, raw=None, headers=None, expect):
        hdrs = dict(headers or {})
        if key:
            hdrs["Authorization"] = f"Bearer {key}"
        with self.server.client(None) as c:
            if raw is None and body is not None:
                raw = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            r = c.request(method, path, params=params, content=raw, headers=hdrs)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text[:300]}"
        full_ctype = r.headers.get("content-type", "")
        ctype = full_ctype.split(";")[0]
        template = template or path
        documented = template in self.spec["paths"] and method.lower() in self.spec["paths"][template]
        if documented:
            self.seen.add((method.lower(), template))
            req = MockRequest(
                self.server.url,
                method,
                path,
                args=params or {},
                headers=hdrs,
                data=raw,
                content_type=hdrs.get("Content-Type", "application/json"),
            )
            self.api.validate_response(
                req,
                # Text bodies as text (openapi-core checks them against `type: string`).
                MockResponse(
                    r.content if ctype == "application/json" else r.text,
                    status_code=r.status_code,
                    content_type=full_ctype,
                    headers=dict(r.headers),
                ),
            )
        else:
            # An undocumented method on a documented path: still the documented error shape.
            assert r.status_code >= 400 and ctype == "application/json", r.text
            schema = dict(self.spec["components"]["schemas"]["ErrorBody"])
            schema["$defs"] = self.spec["components"]["schemas"]
            jsonschema.validate(r.json(), json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/")))
        return r


def test_every_endpoint_answers_as_documented(server, openapi):
    rec = Recorder(server, openapi)
    s = rec.send
    s("GET", "/healthz", expect=200)
    s("GET", "/readyz", expect=200)
    s("GET", "/version", expect=200)
    s("GET", "/openapi.json", expect=200)
    s("GET", "/metrics", expect=200)
    s("GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, expect=200)

    hits = s("GET", "/v1/search", key=CUSTOMER_KEY, params={"q": "refund"}, expect=200).json()["hits"]
    assert hits
    s("GET", "/v1/search", params={"q": "refund"}, expect=401)
    s("GET", "/v1/search", key="not-a-key-0123456789", params={"q": "refund"}, expect=401)
    s("GET", "/v1/search", key=CUSTOMER_KEY, params={"q": ""}, expect=400)
    s("GET", "/v1/search", key=CUSTOMER_KEY, params={"q": "refund", "limt": "3"}, expect=400)
    s("GET", "/v1/search", key=CUSTOMER_KEY, params={"q": "refund", "audience": "agent"}, expect=403)
    s("GET", "/v1/search", key=AGENT_KEY, params={"q": "refund", "audience": "agent", "segments": "1,2"}, expect=200)

    s("POST", "/v1/context", key=CUSTOMER_KEY, body={"query": "refund", "max_chars": 1000}, expect=200)
    s("POST", "/v1/context", key=CUSTOMER_KEY, body={"query": "refund", "max_chars": 10}, expect=400)
    s("POST", "/v1/context", key=CUSTOMER_KEY, raw=b"{not json", headers={"Content-Type": "application/json"}, expect=400)
    s("POST", "/v1/context", body={"query": "refund"}, expect=401)

    art = hits[0]["article_id"]
    tpl = "/v1/articles/{id}"
    s("GET", f"/v1/articles/{art}", template=tpl, key=CUSTOMER_KEY, expect=200)
    s("GET", "/v1/articles/1", template=tpl, key=CUSTOMER_KEY, expect=404)
    s("GET", "/v1/articles/abc", template=tpl, key=CUSTOMER_KEY, expect=400)
    s("GET", f"/v1/articles/{art}", template=tpl, key=CUSTOMER_KEY, params={"audience": "agent"}, expect=403)

    s("POST", "/v1/verify", key=CUSTOMER_KEY, body={"citations": hits[:2]}, expect=200)
    s("POST", "/v1/verify", key=CUSTOMER_KEY, body={"citations": []}, expect=400)
    s("POST", "/v1/verify", key=CUSTOMER_KEY, body={"citations": [{"url": hits[0]["url"]}]}, expect=400)

    s("GET", "/v1/admin/status", key=ADMIN_KEY, expect=200)
    s("GET", "/v1/admin/status", key=CUSTOMER_KEY, expect=403)
    job = s("POST", "/v1/admin/sync", key=ADMIN_KEY, body={"wait": False}, expect=202).json()["job_id"]
    s("POST", "/v1/admin/sync", key=ADMIN_KEY, body={}, expect=200)
    s("POST", "/v1/admin/sync", key=ADMIN_KEY, body={"sources": ["nope"]}, expect=400)
    jt = "/v1/admin/jobs/{id}"
    s("GET", f"/v1/admin/jobs/{job}", template=jt, key=ADMIN_KEY, expect=200)
    s("GET", "/v1/admin/jobs/999999", template=jt, key=ADMIN_KEY, expect=404)
    s("POST", "/v1/admin/reindex", key=ADMIN_KEY, expect=200)
    s("POST", "/v1/admin/reindex", key=AGENT_KEY, expect=403)

    s("GET", "/v1/instance/proof", params={"nonce": "ab" * 16}, expect=200)
    s("GET", "/v1/instance/proof", params={"nonce": "zz"}, expect=400)

    event = {
        "id": str(uuid.uuid4()),
        "type": "zen:event-type:article.published",
        "subject": f"zen:article:{art}",
        "detail": {"id": str(art)},
        "time": "2025-01-01T00:00:00Z",
    }
    raw, hdrs = signed_webhook(event)
    s("POST", "/v1/webhooks/zendesk", raw=raw, headers=hdrs, expect=202)
    s("POST", "/v1/webhooks/zendesk", raw=raw, headers=hdrs, expect=200)  # the same delivery again
    s("POST", "/v1/webhooks/zendesk", raw=raw, headers={"Content-Type": "application/json"}, expect=401)

    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    s("POST", "/mcp", key=CUSTOMER_KEY, body=init, headers={"Accept": MCP_ACCEPT}, expect=200)
    s("POST", "/mcp", body=init, headers={"Accept": MCP_ACCEPT}, expect=401)

    # Methods and paths nobody documents still answer in the documented error shape.
    s("DELETE", "/v1/search", key=CUSTOMER_KEY, expect=405)
    s("GET", "/v1/nothing-here", key=CUSTOMER_KEY, expect=404)

    documented = {(m, p) for p, item in openapi["paths"].items() for m in item}
    assert documented - rec.seen == set(), "documented but never exercised"
