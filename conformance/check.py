#!/usr/bin/env python3
"""Run the scim2-tester conformance checks against a live SCIM server.

    check.py --url http://127.0.0.1:8080/scim/v2 --token TOKEN \
        [--expected-failures expected-failures.txt] [--report report.json]

The server describes itself: scim2-tester reads /ServiceProviderConfig, /ResourceTypes
and /Schemas, builds its models from what the server publishes, then runs the CRUD,
attribute-selection and PATCH checks on every published resource type. Checks for
features ServiceProviderConfig says are unsupported (today: PATCH) come back SKIPPED
from the library, and are counted as skipped here, not failed.

Every result gets an id  SCOPE/CHECK[/SUB]:
  SCOPE  "server" for discovery checks, else the ResourceType name ("User", "Group")
  CHECK  the scim2-tester check (function) name, e.g. "check_add_attribute"
  SUB    for PATCH checks the attribute path ("emails", "urn:...:enterprise:2.0:User:manager"),
         for the 405 checks the HTTP method ("POST"), otherwise "1", "2", ... when a check
         yields several results.

Expected-failures file: one pattern per line, then "# reason / issue". A pattern is a
full id, an id prefix ending at a "/" ("User/check_add_attribute" covers every
attribute), a bare check name (covers every scope), or an fnmatch glob ("Role/*").
Blank lines and lines starting with "#" are ignored.

Exit status: 0 when every failed check is listed as expected, 1 when some check failed
unexpectedly (or, with --strict-expected-failures, when a listed entry no longer fails),
2 when the harness itself could not run (bad arguments, unreadable files, crash).

The token may also come from the SCIM_TOKEN environment variable, which keeps it out of
the process list.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

PASS_STATUSES = {"SUCCESS", "COMPLIANT", "ACCEPTABLE"}
WARN_STATUSES = {"DEVIATION"}  # within the RFC's bounds: counted as passed, flagged
FAIL_STATUSES = {"ERROR", "CRITICAL"}
SKIP_STATUSES = {"SKIPPED"}

SCIM_MEDIA_TYPE = "application/scim+json"
PACKAGES = ("scim2-tester", "scim2-client", "scim2-models", "httpx2")


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="check.py",
        description="Run scim2-tester against a live SCIM server and tally the results.",
        epilog="See conformance/README.md for how to read the output.",
    )
    p.add_argument("--url", required=False, help="SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2")
    p.add_argument(
        "--token",
        default=os.environ.get("SCIM_TOKEN"),
        help="bearer token (default: $SCIM_TOKEN)",
    )
    p.add_argument("--expected-failures", metavar="FILE", help="file listing the checks known to fail")
    p.add_argument("--report", metavar="FILE", help="write a JSON report of every result here")
    p.add_argument(
        "--resource-type",
        action="append",
        default=[],
        metavar="NAME",
        help="only test this ResourceType (repeatable; default: every published one)",
    )
    p.add_argument(
        "--include-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only run checks with this scim2-tester tag (repeatable, e.g. discovery, crud, "
        "crud:read, patch:add); see --list-tags",
    )
    p.add_argument(
        "--exclude-tag", action="append", default=[], metavar="TAG", help="skip checks with this tag (repeatable)"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    p.add_argument(
        "--plain-json",
        action="store_true",
        help="send 'application/json' bodies and 'Accept: */*' (what scim2-cli does) instead of "
        "application/scim+json",
    )
    p.add_argument(
        "--lenient-unknown-attributes",
        action="store_true",
        help="tolerate response attributes the server's own /Schemas do not declare "
        "(default: strict, such a response fails the check)",
    )
    p.add_argument(
        "--strict-expected-failures",
        action="store_true",
        help="also fail when an expected-failures entry no longer fails or matches no check",
    )
    p.add_argument(
        "--seed-catalogue",
        action="store_true",
        help="create a licence product, bundle, emergency location and group manager through the "
        "admin API and hand their values to the checker as examples (canonicalValues) of the "
        "Switchboard extension attributes, which refuse the random strings it otherwise sends",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print full reasons and debug data of failures")
    p.add_argument("--list-tags", action="store_true", help="print the scim2-tester tags and exit")
    args = p.parse_args(argv)
    if not args.list_tags:
        if not args.url:
            p.error("--url is required")
        if not args.token:
            p.error("--token is required (or set SCIM_TOKEN)")
    return args


# --------------------------------------------------------------------------- expected failures


@dataclass
class Expectation:
    pattern: str
    comment: str
    line: int
    matched: list[str] = field(default_factory=list)  # ids of the results it matched
    ran: list[str] = field(default_factory=list)  # ... of which were not skipped
    failing: list[str] = field(default_factory=list)  # ... of which still failing


_COMMENT = re.compile(r"\s+#")


def load_expected_failures(path: str) -> list[Expectation]:
    entries: list[Expectation] = []
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = _COMMENT.split(line, maxsplit=1)
            pattern = parts[0].strip()
            comment = parts[1].strip() if len(parts) > 1 else ""
            if " " in pattern or "\t" in pattern:
                raise ValueError(f"{path}:{no}: a pattern has no spaces; put the reason after ' # '")
            entries.append(Expectation(pattern, comment, no))
    return entries


def pattern_matches(pattern: str, rid: str, title: str) -> bool:
    if rid == pattern or rid.startswith(pattern + "/"):
        return True
    if fnmatch.fnmatchcase(rid, pattern):
        return True
    if "/" not in pattern and (title == pattern or fnmatch.fnmatchcase(title, pattern)):
        return True
    return False


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    id: str
    title: str
    resource_type: str | None
    status: str  # the library's status name
    outcome: str  # PASS, WARN, FAIL, XFAIL, SKIP
    reason: str
    description: str
    tags: list[str]
    data: Any
    expected_by: list[str] = field(default_factory=list)


def _sub_id(result: Any) -> str | None:
    data = result.data
    if isinstance(data, dict) and isinstance(data.get("urn"), str):
        return data["urn"]
    title = result.title or ""
    if title.endswith("_endpoint_methods") and result.reason:
        word = result.reason.split(" ", 1)[0]
        if word in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            return word
    return None


def assign_ids(results: list[Any]) -> list[str]:
    bases = []
    for r in results:
        scope = r.resource_type or "server"
        bases.append(f"{scope}/{r.title or 'unnamed'}")
    totals = Counter(bases)
    seen: Counter[str] = Counter()
    ids = []
    for r, base in zip(results, bases):
        sub = _sub_id(r)
        if sub is not None:
            rid = f"{base}/{sub}"
        elif totals[base] > 1:
            seen[base] += 1
            rid = f"{base}/{seen[base]}"
        else:
            rid = base
        ids.append(rid)
    # Disambiguate any remaining duplicates (same attribute tested twice, say).
    counts = Counter(ids)
    if any(c > 1 for c in counts.values()):
        dup_seen: Counter[str] = Counter()
        for i, rid in enumerate(ids):
            if counts[rid] > 1:
                dup_seen[rid] += 1
                ids[i] = f"{rid}/{dup_seen[rid]}"
    return ids


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return repr(value)[:500]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) else value[:4000]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v, depth + 1) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return _jsonable(dump(mode="json", by_alias=True, exclude_none=True), depth + 1)
        except Exception:  # noqa: BLE001 - debugging data only
            pass
    status_code = getattr(value, "status_code", None)
    if isinstance(status_code, int) and hasattr(value, "text"):  # an HTTP response
        out: dict[str, Any] = {"status_code": status_code}
        try:
            out["content_type"] = value.headers.get("content-type")
            out["body"] = value.text[:4000]
        except Exception:  # noqa: BLE001
            pass
        return out
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return repr(value)[:2000]


def _one_line(text: str | None, limit: int) -> str:
    text = " / ".join(line.strip() for line in (text or "").splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def classify(results: list[Any], expectations: list[Expectation]) -> list[Row]:
    rows = []
    for r, rid in zip(results, assign_ids(results)):
        status = r.status.name
        title = r.title or "unnamed"
        if status in FAIL_STATUSES:
            outcome = "FAIL"
        elif status in SKIP_STATUSES:
            outcome = "SKIP"
        elif status in WARN_STATUSES:
            outcome = "WARN"
        elif status in PASS_STATUSES:
            outcome = "PASS"
        else:  # a status this driver does not know: be safe
            outcome = "FAIL"
        row = Row(
            id=rid,
            title=title,
            resource_type=r.resource_type,
            status=status,
            outcome=outcome,
            reason=r.reason or "",
            description=_one_line((r.description or "").strip().split("\n\n")[0], 300),
            tags=sorted(r.tags or []),
            data=r.data,
        )
        for exp in expectations:
            if pattern_matches(exp.pattern, rid, title):
                exp.matched.append(rid)
                row.expected_by.append(exp.pattern)
                if outcome != "SKIP":
                    exp.ran.append(rid)
                if outcome == "FAIL":
                    exp.failing.append(rid)
        if outcome == "FAIL" and row.expected_by:
            row.outcome = "XFAIL"
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- running


def build_client(args: argparse.Namespace) -> Any:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_models import ScimPolicy, ScimProvider

    headers = {"Authorization": f"Bearer {args.token}"}
    hooks: dict[str, list[Any]] = {}
    if not args.plain_json:
        headers["Accept"] = SCIM_MEDIA_TYPE

        def scim_content_type(request: Any) -> None:
            # httpx labels JSON bodies application/json; a SCIM client says scim+json.
            if request.headers.get("content-type", "").startswith("application/json"):
                request.headers["Content-Type"] = SCIM_MEDIA_TYPE

        hooks["request"] = [scim_content_type]

    http = Client(base_url=args.url, headers=headers, timeout=args.timeout, event_hooks=hooks)
    client = SyncSCIMClient(http)
    if args.lenient_unknown_attributes:
        client.provider = ScimProvider(policy=ScimPolicy(unknown=ScimPolicy.Unknown.ignore))
    return client


USER_EXT = "urn:switchboard:scim:schemas:extension:uc:1.0:User"
GROUP_EXT = "urn:switchboard:scim:schemas:extension:uc:1.0:Group"


def seed_catalogue(client: Any, args: argparse.Namespace) -> None:
    """Give the checker valid values for the attributes that refer to the account's catalogue.

    scim2-tester fills every writable attribute with a random string; Switchboard validates
    licences, bundles, locations, templates and group managers against the account (400
    invalidValue otherwise). Here the harness creates one of each through the admin API, then
    describes the server to the checker from its own /Schemas with those values added as
    canonicalValues, which the checker draws its values from. Nothing is relaxed on the server.
    """
    from httpx2 import Client
    from scim2_models import ResourceType, Schema, ScimProvider

    admin_base = args.url.rstrip("/").removesuffix("/scim/v2") + "/admin/v1"
    auth = {"Authorization": f"Bearer {args.token}"}
    with Client(base_url=admin_base, headers=auth, timeout=args.timeout) as admin, Client(
        base_url=args.url, headers=auth, timeout=args.timeout
    ) as scim:

        def ok(response: Any) -> Any:
            if response.status_code >= 400:
                raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
            return response.json() if response.content else None

        # The phone licence (a direct number needs it) and numbers for every user the checker
        # creates with all its attributes.
        ok(admin.put("/products/phone", json={"seats": 1000000, "features": ["sms"]}))
        ok(admin.put("/bundles/conformance", json={"entitlements": [{"value": "phone", "type": "License"}]}))
        ok(admin.post("/numbers", json={"numbers": [f"+3314286{n:04d}" for n in range(6000, 6500)], "smsCapable": True}))
        location = ok(admin.post("/emergency-locations", json={"name": f"Conformance HQ {uuid_hex()}", "address": {}}))
        role = ok(admin.post("/roles", json={"name": f"Conformance managers {uuid_hex()}", "permissions": ["manageGroups"]}))
        manager = ok(
            scim.post(
                "/Users",
                json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": f"manager-{uuid_hex()}@conformance.invalid",
                    "roles": [{"value": role["value"]}],
                },
            )
        )
        schemas = ok(scim.get("/Schemas"))["Resources"]
        resource_types = ok(scim.get("/ResourceTypes"))["Resources"]

    examples = {
        (USER_EXT, "licenseBundle"): ["conformance"],
        (USER_EXT, "emergencyLocation"): [location["id"]],
        (USER_EXT, "welcomeEmailTemplate"): ["system"],
        (USER_EXT, "productSettingsTemplate"): ["system"],
        # canonicalValues are strings; the checker sends them as they are, and the server
        # accepts "false" for a boolean (a dialect of one of the big identity providers).
        (USER_EXT, "smsEnabled"): ["false"],
        (USER_EXT, "sendWelcomeEmail"): ["true"],
        # "auto": the next free extension / number. What comes back (the assigned digits, the
        # number) differs from what was sent, which the attribute-by-attribute checks list as
        # expected failures.
        (USER_EXT, "extensionNumber"): ["auto"],
        (USER_EXT, "directNumber"): ["auto"],
        ("urn:ietf:params:scim:schemas:core:2.0:User", "entitlements.value"): ["phone"],
        ("urn:ietf:params:scim:schemas:core:2.0:User", "entitlements.type"): ["License"],
        (GROUP_EXT, "entitlements.value"): ["phone"],
        (GROUP_EXT, "entitlements.type"): ["License"],
        (GROUP_EXT, "productSettingsTemplate"): ["system"],
        (GROUP_EXT, "managers.value"): [manager["id"]],
    }
    for schema in schemas:
        for attribute in schema.get("attributes", []):
            name = attribute["name"]
            if (values := examples.get((schema["id"], name))) is not None:
                attribute["canonicalValues"] = values
            for sub in attribute.get("subAttributes", []):
                if (values := examples.get((schema["id"], f"{name}.{sub['name']}"))) is not None:
                    sub["canonicalValues"] = values
    provider = client.provider
    client.provider = ScimProvider.from_discovery(
        [Schema.model_validate(s) for s in schemas],
        [ResourceType.model_validate(r) for r in resource_types],
        provider.config,
        provider.policy,
    )


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run(args: argparse.Namespace) -> int:
    try:
        expectations = load_expected_failures(args.expected_failures) if args.expected_failures else []
    except (OSError, ValueError) as exc:
        print(f"check.py: cannot read expected failures: {exc}", file=sys.stderr)
        return 2

    from scim2_tester import check_server

    client = build_client(args)
    if args.seed_catalogue:
        try:
            seed_catalogue(client, args)
        except Exception as exc:  # the harness, not a check, failed
            print(f"check.py: seeding the catalogue failed: {exc}", file=sys.stderr)
            traceback.print_exc()
            return 2
    vers = versions()
    print(f"scim2-tester {vers['scim2-tester']} (scim2-client {vers['scim2-client']}, "
          f"scim2-models {vers['scim2-models']}) against {args.url}")
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    results = check_server(
        client,
        include_tags=set(args.include_tag) or None,
        exclude_tags=set(args.exclude_tag) or None,
        resource_types=args.resource_type or None,
    )
    duration = time.monotonic() - t0

    # check_server stops after discovery when it cannot describe the server; then no
    # resource checks ran at all, which must not read as a pass.
    if not any(r.resource_type for r in results) and not args.include_tag:
        from scim2_tester import CheckResult, Status

        results.append(
            CheckResult(
                status=Status.ERROR,
                title="resource_checks_ran",
                description="The driver expects scim2-tester to test at least one resource type.",
                reason="no resource type was tested: discovery failed, the server published no "
                "ResourceType, or --resource-type matched none",
                tags={"harness"},
            )
        )

    rows = classify(results, expectations)

    # ---- one line per result
    for row in rows:
        limit = 10_000 if args.verbose else 160
        line = f"{row.outcome:<5} {row.id}"
        if row.status not in ("SUCCESS", "ERROR", "SKIPPED"):
            line += f" [{row.status}]"
        reason = _one_line(row.reason, limit)
        if reason:
            line += f"  {reason}"
        print(line)
        if args.verbose and row.outcome in ("FAIL", "XFAIL") and row.data is not None:
            print("      data: " + _one_line(json.dumps(_jsonable(row.data), default=str), 4000))

    # ---- expected-failure bookkeeping
    stale = [e for e in expectations if e.ran and not e.failing]
    unmatched = [e for e in expectations if not e.matched]
    for e in stale:
        print(f"note: expected failure '{e.pattern}' (line {e.line}) no longer fails "
              f"({len(e.ran)} result(s) pass): remove it from the list")
    for e in unmatched:
        print(f"note: expected failure '{e.pattern}' (line {e.line}) matches no check")

    # ---- tallies
    outcomes = Counter(row.outcome for row in rows)
    statuses = Counter(row.status for row in rows)
    per_scope: dict[str, Counter[str]] = {}
    for row in rows:
        per_scope.setdefault(row.resource_type or "server", Counter())[row.outcome] += 1

    print()
    print("by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    for scope, c in per_scope.items():
        print(f"  {scope}: " + ", ".join(f"{k.lower()} {c[k]}" for k in ("PASS", "WARN", "FAIL", "XFAIL", "SKIP") if c[k]))
    if outcomes["WARN"]:
        print(f"deviations (SHOULD not followed, counted as passed): {outcomes['WARN']}")
    if expectations:
        print(f"expected failures: {outcomes['XFAIL']} still failing, {len(stale)} stale entries, "
              f"{len(unmatched)} unmatched entries (from {args.expected_failures})")
    passed = outcomes["PASS"] + outcomes["WARN"]
    failed = outcomes["FAIL"]
    print(f"conformance: {passed} passed, {failed} failed, {outcomes['SKIP']} skipped")

    exit_code = 1 if failed else 0
    if args.strict_expected_failures and (stale or unmatched):
        exit_code = 1

    if args.report:
        report = {
            "url": args.url,
            "started_at": started.isoformat(),
            "duration_s": round(duration, 3),
            "versions": vers,
            "filters": {
                "resource_types": args.resource_type,
                "include_tags": args.include_tag,
                "exclude_tags": args.exclude_tag,
            },
            "summary": {
                "passed": passed,
                "failed": failed,
                "expected_failures": outcomes["XFAIL"],
                "skipped": outcomes["SKIP"],
                "deviations": outcomes["WARN"],
                "total": len(rows),
                "by_status": dict(statuses),
                "by_scope": {k: dict(v) for k, v in per_scope.items()},
                "exit_code": exit_code,
            },
            "expected_failures": {
                "file": args.expected_failures,
                "stale": [{"pattern": e.pattern, "line": e.line, "comment": e.comment} for e in stale],
                "unmatched": [{"pattern": e.pattern, "line": e.line, "comment": e.comment} for e in unmatched],
            },
            "results": [
                {
                    "id": row.id,
                    "title": row.title,
                    "resource_type": row.resource_type,
                    "status": row.status,
                    "outcome": row.outcome,
                    "reason": row.reason,
                    "description": row.description,
                    "tags": row.tags,
                    "expected_by": row.expected_by,
                    "data": _jsonable(row.data),
                }
                for row in rows
            ],
        }
        try:
            with open(args.report, "w", encoding="utf-8") as fh:
                json.dump(report, fh, indent=2, default=str)
                fh.write("\n")
        except OSError as exc:
            print(f"check.py: cannot write report: {exc}", file=sys.stderr)
            return 2
        print(f"report: {args.report}")

    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_tags:
        from scim2_tester import get_all_available_tags

        print("\n".join(get_all_available_tags()))
        return 0
    try:
        return run(args)
    except KeyboardInterrupt:
        return 2
    except Exception:  # noqa: BLE001 - the harness itself broke, not the server
        traceback.print_exc()
        print("check.py: the harness crashed (exit 2)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
