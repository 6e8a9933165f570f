"""A small in-memory SCIM server, only for testing the conformance driver itself.

It is NOT Switchboard and says nothing about Switchboard's behaviour: it exists so
that `check.py` (report, tallies, expected-failures, exit codes) can be exercised
without building the Rust server. It is built on scim2-models, the library the
checker itself uses, so it passes most checks; `--break-discovery-methods` makes it
answer 404 instead of 405 on the discovery endpoints, to produce known failures.

    python selftest/fake_server.py --port 8099 --token secret
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError
from scim2_models import (
    Context,
    EnterpriseUser,
    Error,
    Group,
    ListResponse,
    Meta,
    Patch,
    PatchOp,
    ResourceType,
    ResponseParameters,
    SCIMException,
    Schema,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    User,
)

PREFIX = "/scim/v2"
USER = User[EnterpriseUser]
PROVIDER = ScimProvider(
    models=[User, Group, EnterpriseUser],
    resource_types=[ResourceType.from_resource(USER), ResourceType.from_resource(Group)],
    config=ServiceProviderConfig(
        documentation_uri=None,
        patch={"supported": True},
        bulk={"supported": False, "max_operations": 0, "max_payload_size": 0},
        filter={"supported": False, "max_results": 100},
        change_password={"supported": False},
        sort={"supported": False},
        etag={"supported": True},
        authentication_schemes=[
            {"type": "oauthbearertoken", "name": "Bearer", "description": "Bearer token"}
        ],
    ),
)
ENDPOINTS = {"/Users": ("User", USER), "/Groups": ("Group", Group)}


def error(status: int, detail: str, scim_type: str | None = None) -> tuple[int, dict, dict]:
    body = Error(status=status, detail=detail, scim_type=scim_type).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return status, body, {}


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, dict[str, Any]] = {"User": {}, "Group": {}}


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-scim/0"
    store: Store
    token: str
    break_methods: bool

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------
    def _send(self, status: int, body: dict | None, headers: dict[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/scim+json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        try:
            status, body, headers = self._route(method)
        except SCIMException as exc:
            err = exc.to_error()
            status, body, headers = (
                err.status or 400,
                err.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE),
                {},
            )
        except ValidationError as exc:
            err = Error.from_validation_errors(exc)[0]
            status, body, headers = 400, err.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), {}
        self._send(status, body, headers)

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")  # noqa: E731
    do_PATCH = lambda self: self._dispatch("PATCH")  # noqa: E731
    do_DELETE = lambda self: self._dispatch("DELETE")  # noqa: E731

    def _json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _base(self) -> str:
        return f"http://{self.headers.get('Host')}{PREFIX}"

    # --- routing ----------------------------------------------------------
    def _route(self, method: str) -> tuple[int, dict | None, dict]:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/healthz":
            return 200, {"status": "ok"}, {}
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            return error(401, "missing or wrong bearer token")
        if not path.startswith(PREFIX):
            return error(404, "not found")
        path = path[len(PREFIX):] or "/"
        segs = [unquote(s) for s in path.strip("/").split("/")]
        head = "/" + segs[0]

        if head in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas"):
            if method != "GET":
                return error(404 if self.break_methods else 405, f"{method} not allowed")
            return self._discovery(head, segs[1:])
        if head == "/.search" and method == "POST":
            return self._search(None)
        if head in ENDPOINTS:
            name, model = ENDPOINTS[head]
            if len(segs) == 1:
                if method == "POST":
                    return self._create(name, model)
                if method == "GET":
                    return self._list(name, model, query)
                return error(405, f"{method} not allowed")
            if len(segs) == 2 and segs[1] == ".search" and method == "POST":
                return self._search(name)
            if len(segs) == 2:
                return self._one(method, name, model, segs[1], query)
        return error(404, f"no such endpoint {path}")

    def _discovery(self, head: str, rest: list[str]) -> tuple[int, dict | None, dict]:
        ctx = Context.RESOURCE_QUERY_RESPONSE
        if head == "/ServiceProviderConfig":
            return 200, PROVIDER.config.model_dump(scim_ctx=ctx), {}
        items: list[Any] = (
            list(PROVIDER.resource_types) if head == "/ResourceTypes" else list(PROVIDER.schemas)
        )
        if rest:
            for item in items:
                if item.id == rest[0]:
                    return 200, item.model_dump(scim_ctx=ctx), {}
            return error(404, f"{rest[0]} not found")
        lr = ListResponse[type(items[0])](
            total_results=len(items), start_index=1, items_per_page=len(items), resources=items
        )
        return 200, lr.model_dump(scim_ctx=ctx), {}

    # --- resources --------------------------------------------------------
    def _stamp(self, name: str, obj: Any, created: datetime | None, version: int) -> None:
        now = datetime.now(timezone.utc)
        endpoint = "/Users" if name == "User" else "/Groups"
        obj.meta = Meta(
            resource_type=name,
            created=created or now,
            last_modified=now,
            location=f"{self._base()}{endpoint}/{obj.id}",
            version=f'W/"{version}"',
        )

    def _render(self, obj: Any, ctx: Context, query: dict | None = None) -> dict:
        params = _params(query or {})
        with PROVIDER:
            return obj.model_dump(scim_ctx=ctx, response_parameters=params)

    def _create(self, name: str, model: Any) -> tuple[int, dict | None, dict]:
        with PROVIDER:
            obj = model.model_validate(self._json(), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        obj.id = str(uuid.uuid4())
        self._stamp(name, obj, None, 1)
        with self.store.lock:
            self.store.items[name][obj.id] = obj
        body = self._render(obj, Context.RESOURCE_CREATION_RESPONSE)
        return 201, body, {"Location": obj.meta.location, "ETag": obj.meta.version}

    def _list(self, name: str, model: Any, query: dict) -> tuple[int, dict | None, dict]:
        items = list(self.store.items[name].values())
        lr = ListResponse[model](
            total_results=len(items), start_index=1, items_per_page=len(items), resources=items
        )
        return 200, self._render(lr, Context.RESOURCE_QUERY_RESPONSE, query), {}

    def _search(self, name: str | None) -> tuple[int, dict | None, dict]:
        req = SearchRequest.model_validate(self._json() or {}, scim_ctx=Context.SEARCH_REQUEST)
        names = [name] if name else ["User", "Group"]
        items = [o for n in names for o in self.store.items[n].values()]
        models = tuple(model for _, model in ENDPOINTS.values())
        lr = ListResponse[Union[models]](  # noqa: UP007
            total_results=len(items), start_index=1, items_per_page=len(items), resources=items
        )
        with PROVIDER:
            body = lr.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=req)
        return 200, body, {}

    def _one(self, method: str, name: str, model: Any, rid: str, query: dict) -> tuple[int, dict | None, dict]:
        obj = self.store.items[name].get(rid)
        if obj is None:
            return error(404, f"{name} {rid} not found")
        if method == "GET":
            return 200, self._render(obj, Context.RESOURCE_QUERY_RESPONSE, query), {"ETag": obj.meta.version}
        if method == "DELETE":
            del self.store.items[name][rid]
            return 204, None, {}
        match = self.headers.get("If-Match")
        if match and match != obj.meta.version:
            return error(412, "version mismatch")
        version = int(obj.meta.version.split('"')[1]) + 1
        if method == "PUT":
            with PROVIDER:
                new = model.model_validate(self._json(), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
                new.replace(obj)
            new.id = rid
            self._stamp(name, new, obj.meta.created, version)
            self.store.items[name][rid] = new
            return 200, self._render(new, Context.RESOURCE_REPLACEMENT_RESPONSE), {"ETag": new.meta.version}
        if method == "PATCH":
            with PROVIDER:
                op = PatchOp[model].model_validate(self._json(), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
                op.patch(obj)
            self._stamp(name, obj, obj.meta.created, version)
            return 200, self._render(obj, Context.RESOURCE_PATCH_RESPONSE), {"ETag": obj.meta.version}
        return error(405, f"{method} not allowed")


def _params(query: dict[str, list[str]]) -> ResponseParameters | None:
    attrs = ",".join(query.get("attributes", []))
    excl = ",".join(query.get("excludedAttributes", []))
    if not attrs and not excl:
        return None
    data: dict[str, Any] = {}
    if attrs:
        data["attributes"] = attrs.split(",")
    if excl:
        data["excludedAttributes"] = excl.split(",")
    return ResponseParameters.model_validate(data)


def _load_schemas_dir(path: str) -> tuple[ScimProvider, Any, dict[str, tuple[str, Any]]]:
    import glob
    import os

    def load(pattern: str) -> list[dict]:
        return [json.load(open(f, encoding="utf-8")) for f in sorted(glob.glob(os.path.join(path, pattern)))]

    schemas = [Schema.model_validate(s) for s in load("*.json")]
    rtypes = [ResourceType.model_validate(r) for r in load("resource-types/*.json")]
    provider = ScimProvider.from_discovery(schemas, rtypes, PROVIDER.config)
    endpoints = {}
    for rt in provider.resource_types:
        if rt.name in ("User", "Group"):
            endpoints[rt.endpoint] = (rt.name, provider.model_for(rt))
    return provider, endpoints["/Users"][1], endpoints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", default="selftest")
    ap.add_argument("--break-discovery-methods", action="store_true")
    ap.add_argument("--no-patch", action="store_true", help="advertise patch.supported=false")
    ap.add_argument(
        "--schemas-dir",
        help="serve the schemas (*.json) and resource types (resource-types/*.json) of this "
        "directory, e.g. the repo's schemas/, instead of scim2-models' User/Group/EnterpriseUser",
    )
    args = ap.parse_args()
    global PROVIDER, USER, ENDPOINTS
    if args.schemas_dir:
        PROVIDER, USER, ENDPOINTS = _load_schemas_dir(args.schemas_dir)
    if args.no_patch:
        config = PROVIDER.config.model_copy(update={"patch": Patch(supported=False)})
        PROVIDER = ScimProvider(models=PROVIDER.models, resource_types=PROVIDER.resource_types, config=config)
    Handler.store = Store()
    Handler.token = args.token
    Handler.break_methods = args.break_discovery_methods
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
