#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/seed-*).

Run from anywhere: `python3 tests/fuzz/make_seeds.py`. Seeds are small valid (and a few
almost valid) inputs per route family, chunked requests, WebSocket messages of each op,
envelopes made from the golden payloads (tests/golden) and RFC 3339 times. Inputs that
crashed a target once are kept next to them as `regress-*` (never rewritten here).
Placeholders (@TOKEN@, @PROJECT@, ...) are replaced by the harness (harness.hpp).
"""
import json
import os
import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
GOLDEN = HERE.parent / "golden"


def write(target, items):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for i, data in enumerate(items):
        if isinstance(data, str):
            data = data.encode()
        (d / f"seed-{i:03d}").write_bytes(data)


# ---- (b) api_body: route byte, flags byte, body -----------------------------------------
ROUTES = [
    ("login", {"username": "fuzzadmin0", "password": "fuzz-admin-password"}),
    ("create_user", {"username": "ada", "email": "ada@example.com", "password": "correct-horse-42", "role": "member"}),
    ("patch_user", {"grant_role": "auditor"}),
    ("disable_user", None),
    ("create_project", {"name": "Assay QC", "description": "Plate reader runs"}),
    ("patch_project", {"name": "Assay QC 2026", "description": "renamed"}),
    ("project_member", {"user_id": "@USER@", "role": "editor"}),
    ("add_cell", {"kind": "markdown", "content": "# notes"}),
    ("patch_cell", {"content": "edited", "base_version": 1, "op_id": "op-1"}),
    ("create_group", {"name": "Lab A", "description": "bench people"}),
    ("group_member", {"user_id": "@USER@"}),
    ("create_connection", {"name": "warehouse", "driver": "sqlite", "params": {"path": "/tmp/atrium-fuzz.db"}}),
    ("patch_connection", {"name": "warehouse 2", "params": {"path": "/tmp/other.db"}}),
    ("connection_member", {"group_id": "@GROUP@", "role": "user"}),
    ("test_connection", None),
    ("submit_job", {"project_id": "@PROJECT@", "kind": "sql", "connection_id": "@CONN@", "sql": "select 1",
                    "timeout_s": 30}),
    ("cancel_job", {"reason": "no longer needed"}),
    ("declare_container", {"name": "worker", "image": "alpine:3", "command": ["sh", "-c", "sleep 1"],
                           "env": {"A": "1"}, "ports": [8080]}),
    ("start_container", None),
    ("run_cell", {"timeout_s": 5}),
    ("create_schedule", {"name": "nightly", "project_id": "@PROJECT@", "cron": "*/15 6-18 * * MON-FRI",
                         "time_zone": "America/New_York", "catch_up": "last",
                         "target": {"kind": "sql", "connection_id": "@CONN@", "sql": "select 1", "timeout_s": 30}}),
    ("patch_schedule", {"cron": "@every 1h30m", "time_zone": "Australia/Lord_Howe", "target": {"run_cells": True}}),
    ("pause_schedule", {"reason": "holiday"}),
]
body_seeds = []
for i, (_, body) in enumerate(ROUTES):
    text = "" if body is None else json.dumps(body, separators=(",", ":"))
    body_seeds.append(bytes([i, 0]) + text.encode())
    body_seeds.append(bytes([i, 1 | 2]) + text.encode())  # as the member, with an Idempotency-Key
body_seeds.append(bytes([5, 12]) + b'W/"1"\n{"name":"x"}')  # If-Match from the body's first line
body_seeds.append(bytes([8, 0]) + b'{"after":null}')  # a cell move
body_seeds.append(bytes([2, 0]) + b'{"disabled":true}')
body_seeds.append(bytes([2, 0]) + b'{"password":"another-password-1"}')
body_seeds.append(bytes([12, 0]) + b'{"credentials":{"password":"s3cret"}}')
# service accounts and API tokens (k_routes 23-25; 20-22 are the schedules in ROUTES)
body_seeds.append(bytes([23, 0]) + b'{"name":"ci-bot","description":"nightly QC","role":"member"}')
body_seeds.append(bytes([23, 1]) + b'{"name":"ci-bot"}')
body_seeds.append(bytes([24, 0]) + b'{"name":"laptop","scopes":["events:read","jobs:work"],"expires_in_s":3600}')
body_seeds.append(bytes([24, 1 | 2]) + b'{"name":"mine","scopes":["admin"]}')
body_seeds.append(bytes([24, 0]) + b'{"name":"x","scopes":["events:write"],"expires_in_s":-1}')
body_seeds.append(bytes([25, 0]) + b'{"name":"worker","scopes":["jobs:work"]}')
# remote workers (k_routes 26-29: claim, heartbeat, result, complete on a lease no worker holds)
for i, body in enumerate([
    {"worker": "fuzz-1", "slots_free": 0, "slots": 2, "wait_s": 0},
    {"worker": "fuzz-1", "rows": 10, "bytes": 100, "percent": 50, "elapsed_ms": 1200},
    {"worker": "fuzz-1", "seq": 0, "columns": [{"name": "n", "type": "int"}], "rows": [["1"], [None]], "log": "line\n"},
    {"worker": "fuzz-1", "outcome": "failed", "error": "boom", "sqlstate": "42601", "batches": 1, "truncated": False,
     "duration_ms": 12},
]):
    text = json.dumps(body, separators=(",", ":")).encode()
    body_seeds.append(bytes([26 + i, 0]) + text)
    body_seeds.append(bytes([26 + i, 1 | 2]) + text)  # as the member, with an Idempotency-Key
# co-editing (k_routes 30: POST …/cells/@CELL@/changes on the fixture cell "select 1")
for body in [
    {"version": 1, "client_id": "fuzz-a", "updates": [{"changes": [8, [0, " -- ü😀"]]}]},
    {"version": 1, "client_id": "fuzz-a", "updates": [{"changes": [[8, "select", "2"]]}, {"changes": [[1], 7]}]},
    {"version": 9, "client_id": "fuzz-b", "updates": [{"changes": [8]}]},
    {"version": 1, "client_id": "fuzz-c", "updates": [{"changes": [[8, "😀"]]}, {"changes": [1, 1]}]},
    {"version": 1, "client_id": "fuzz-d", "updates": [{"changes": [9007199254740993]}]},
]:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    body_seeds.append(bytes([30, 0]) + text)
    body_seeds.append(bytes([30, 1 | 2]) + text)
# containers (issue 18): k_routes 17 (POST /v1/containers) with the full spec, 31 (PATCH …/@CONTAINER@)
for route, body in [
    (17, {"name": "web", "runtime": "process", "command": ["python3", "-m", "http.server", "8000"], "ports": [8000],
          "limits": {"memory_bytes": 268435456, "cpus": 0.5, "pids": 64}, "restart": "always",
          "health": {"http": {"port": 8000, "path": "/"}, "interval_s": 5, "timeout_s": 2, "retries": 3,
                     "start_period_s": 1}}),
    (17, {"name": "box", "runtime": "docker", "image": "busybox", "health": {"exec": ["true"]}}),
    (17, {"name": "bad", "command": ["x"], "limits": {"memory_bytes": -1, "cpus": 1e308}}),
    (31, {"env": {"A": "b"}, "restart": "never"}),
    (31, {"health": {"tcp": {"port": 8080}}, "ports": [8080], "limits": {"cpus": 2}}),
    (31, {"health": None, "runtime": "docker"}),
]:
    text = json.dumps(body, separators=(",", ":")).encode()
    body_seeds.append(bytes([route, 0]) + text)
write("api_body", body_seeds)


# ---- (a) http_request: raw HTTP/1.1 ------------------------------------------------------
def req(method, target, body=None, token="@TOKEN@", extra=""):
    head = f"{method} {target} HTTP/1.1\r\nHost: atrium\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    head += extra
    if body is not None:
        b = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        return head + f"Content-Type: application/json\r\nContent-Length: {len(b.encode())}\r\n\r\n" + b
    return head + "\r\n"


http = [
    req("GET", "/healthz", token=None),
    req("GET", "/readyz", token=None),
    req("GET", "/metrics", token=None),
    req("POST", "/v1/auth/login", {"username": "nobody", "password": "x12345678"}, token=None),
    req("GET", "/v1/users?limit=10"),
    req("GET", "/v1/users/@USER@?as_of=2026-11-21T04:45:59Z"),
    req("PATCH", "/v1/users/@USER@", {"grant_role": "auditor"}),
    req("POST", "/v1/users", {"username": "bob", "email": "b@example.com", "password": "pw-123456789"}),
    req("GET", "/v1/projects?limit=5&after=0"),
    req("POST", "/v1/projects", {"name": "P", "description": "d"}, extra="Idempotency-Key: k1\r\n"),
    req("GET", "/v1/projects/@PROJECT@"),
    req("PATCH", "/v1/projects/@PROJECT@", {"name": "P2"}, extra='If-Match: "@PVER@"\r\n'),
    req("GET", "/v1/projects/@PROJECT@/cells?as_of=3"),
    req("POST", "/v1/projects/@PROJECT@/cells", {"kind": "sql", "content": "select 1"}),
    req("GET", "/v1/projects/@PROJECT@/cells/@CELL@"),
    req("PATCH", "/v1/projects/@PROJECT@/cells/@CELL@", {"after": None}),
    req("POST", "/v1/projects/@PROJECT@/members", {"user_id": "@USER@", "role": "viewer"}),
    req("DELETE", "/v1/projects/@PROJECT@/members/@USER@"),
    req("GET", "/v1/projects/@PROJECT@", token="@MTOKEN@"),
    req("GET", "/v1/groups"),
    req("GET", "/v1/groups/@GROUP@"),
    req("POST", "/v1/groups/@GROUP@/members", {"user_id": "@USER@"}),
    req("GET", "/v1/connections"),
    req("GET", "/v1/connections/@CONN@"),
    req("POST", "/v1/connections/@CONN@/test", ""),
    req("GET", "/v1/jobs?project=@PROJECT@&status=queued"),
    req("GET", "/v1/jobs/@JOB@"),
    req("POST", "/v1/jobs/@JOB@/cancel", {"reason": "r"}),
    req("GET", "/v1/containers"),
    req("GET", "/v1/containers/@CONTAINER@"),
    req("POST", "/v1/containers/@CONTAINER@/stop", ""),
    req("PATCH", "/v1/containers/@CONTAINER@", {"env": {"A": "b"}}),
    req("GET", "/v1/containers/@CONTAINER@/logs?tail=5"),
    req("GET", "/v1/audit?limit=3&order=desc&since=2026-01-01T00:00:00Z&type=project.created"),
    req("GET", "/v1/audit/export?format=csv&until=2099-01-01T00:00:00%2B01:00"),
    req("GET", "/v1/audit/verify"),
    req("GET", "/v1/events?after=0&limit=5"),
    req("GET", "/v1/streams/project-@PROJECT@"),
    req("GET", "/v1/admin/projections"),
    req("GET", "/v1/events/stream?after=0"),
    req("GET", "/v1/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
    # chunked bodies, with an extension and a trailer
    "POST /v1/projects HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer @TOKEN@\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\n{\"nam\r\n9;ext=1\r\ne\":\"chunk\r\n2\r\n\"}\r\n0\r\nX-Trailer: t\r\n\r\n",
    "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: aaaa\r\n\r\n",
    # pipelined keep-alive requests, then Connection: close
    req("GET", "/healthz", token=None) + req("GET", "/v1/projects/@PROJECT@")
    + req("GET", "/readyz", token=None, extra="Connection: close\r\n"),
    # HTTP/1.0 and odd but valid forms
    "GET /healthz HTTP/1.0\r\n\r\n",
    "GET /v1/projects/%FF%FE HTTP/1.1\r\nHost: x\r\nAuthorization: bearer @TOKEN@\r\n\r\n",
    # running a cell, with and without a body; giving a cell a connection
    req("POST", "/v1/projects/@PROJECT@/cells/@CELL@/run", {"timeout_s": 5, "max_attempts": 2}),
    req("POST", "/v1/projects/@PROJECT@/cells/@CELL@/run", ""),
    req("PATCH", "/v1/projects/@PROJECT@/cells/@CELL@", {"connection_id": "@CONN@"}),
    # a finished job's output (issue 15): pages, bad paging, the streamed CSV, the log
    req("GET", "/v1/jobs/@DONEJOB@/result?offset=1&limit=2"),
    req("GET", "/v1/jobs/@DONEJOB@/result?offset=-1&limit=10001"),
    req("GET", "/v1/jobs/@DONEJOB@/result?offset=18446744073709551616&limit=%31"),
    req("GET", "/v1/jobs/@DONEJOB@/result.csv"),
    req("GET", "/v1/jobs/@DONEJOB@/log", token="@MTOKEN@"),
    req("GET", "/v1/jobs/@JOB@/result?limit=1"),
    # the API's OpenAPI document (issue 21): open, no input but the request itself
    req("GET", "/v1/openapi.json", token=None),
]
write("http_request", http)

# ---- (c) ws_message: one WebSocket text message --------------------------------------------
ws = [
    {"op": "ping"},
    {"op": "subscribe", "id": "s1", "streams": ["project-@PROJECT@"]},
    {"op": "subscribe", "id": 7, "projects": ["@PROJECT@"], "after": 0},
    {"op": "subscribe", "id": "all", "streams": ["security"]},
    {"op": "unsubscribe", "id": "s1"},
    {"op": "command", "id": 1, "command": {"method": "POST", "path": "/v1/projects", "body": {"name": "from ws"}}},
    {"op": "command", "id": "c2", "command": {"method": "PATCH", "path": "/v1/projects/@PROJECT@",
                                              "headers": {"If-Match": "\"@PVER@\""}, "body": "{\"description\":\"x\"}"}},
    {"op": "command", "id": "c3", "command": {"method": "GET", "path": "/v1/audit?limit=2"}},
    {"op": "presence", "id": "p", "project": "@PROJECT@", "state": {"cursor": {"cell": "@CELL@", "offset": 3}}},
    {"op": "presence", "project": "@PROJECT@", "state": None},
    {"op": "nope"},
]
write("ws_message", [json.dumps(m, separators=(",", ":")) for m in ws] + ["not json", "[]", '{"op":1}'])

# ---- (d) envelope: storage bytes of committed events -----------------------------------------
envelopes = []
for n, path in enumerate(sorted(GOLDEN.glob("*.json"))):
    event_type = path.name.split(".v")[0]
    entity = event_type.split(".")[0]
    stream = "security" if entity == "security" else f"{entity}-0193a1b3-0f1e-7d2c-9b3a-4c5d6e7f8091"
    e = {
        "position": n + 1,
        "stream": stream,
        "version": 1 + n % 3,
        "id": "0193a1b3-0f1e-7d2c-9b3a-4c5d6e7f80%02x" % n,
        "type": event_type,
        "schema": 1,
        "time": "2026-11-21T04:45:59.123456Z",
        "actor": "user-0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "correlation_id": "c-%d" % n,
        "causation_id": "c-%d" % n,
        "data": json.loads(path.read_text()),
    }
    if n % 2 == 0:
        e["metadata"] = {"client_address": "127.0.0.1:5555", "user_agent": "curl/7.88"}
    if n % 3 == 0:
        e["hash"] = "ab" * 32
    envelopes.append(json.dumps(e, separators=(",", ":"), ensure_ascii=n % 4 == 0))
    if len(envelopes) >= 24:
        break
envelopes.append('{"position":1,"stream":"s-1","version":1,"id":"i","type":"t.x","time":"t","actor":"system",'
                 '"data":{"f":1.5e300,"n":-3,"big":18446744073709551615,"u":"\\u00e9\\ud83d\\ude00","a":[[],{}]}}')
write("envelope", envelopes)

# ---- (e) rfc3339 -----------------------------------------------------------------------------------
write("rfc3339", [
    "2026-11-21T04:45:59Z",
    "2026-11-21T04:45:59.123456Z",
    "2026-11-21t04:45:59.1234567z",
    "2026-11-21T04:45:59.999999999+05:30",
    "2026-11-21T04:45:59-08:00",
    "2026-11-21T04:45:59 01:00",
    "1999-12-31T23:59:60Z",
    "0000-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.9999999Z",
    "2024-02-29T12:00:00.5Z",
])

# ---- (f) csv (result.csv of script jobs) ------------------------------------------------------------
write("csv", [
    "a,b\r\n1,2\r\n",
    "id,name,score\n1,alice,0.5\n2,bob,1e3\n",
    'name,note\n"Smith, J","line1\nline2"\n"say ""hi""",\n',
    'x\n""\n" spaced "\n',
    "a,b\n1\n",
    'a\n"open',
    'a\nx"y\n',
    '"a"b\n',
    "a,b\r1,2\r\n\n\n3,4",
    ",,\n,,\n",
    "h\n\xc3\xa9t\xc3\xa9\n",
    b"h\n\xff\n",
])

# ---- (g) cron (schedules' cron expressions) ----------------------------------------------------------
write("cron", [
    "0 6 * * 1-5",
    "*/15 * * * *",
    "5-20/5 0-23/6 1,15 JAN-MAR,jul mon-fri",
    "0 0 29 2 *",
    "0 0 13 * 5",
    "0 0 * * 7",
    "@hourly",
    "@daily",
    "@every 30s",
    "@every 1h30m",
    "0 0 30 2 *",
    "61 * * * *",
    "*/0 * * * *",
    "1,,2 * * * *",
    "@every 0s",
    "@reboot",
    " \t0 0 1 1 sun,sat ",
])

# ---- (g2) container_state: first byte 0 state.json, 1 runtime.json, 2 runtime id, 3 process output ----
RID = "proc-0193a1c2-0000-7000-8000-00000000c001-1"
write("container_state", [
    bytes([0]) + json.dumps({"runtime_id": RID, "start": 1, "status": "running", "shim_pid": 4242, "pid": 4243,
                             "pid_start": 123456, "started_at_ms": 1764892800000}).encode(),
    bytes([0]) + json.dumps({"runtime_id": RID, "start": 2, "status": "exited", "shim_pid": 4242, "pid": 4243,
                             "pid_start": 123456, "started_at_ms": 1764892800000, "exit_code": 137,
                             "reason": "killed", "finished_at_ms": 1764892801000}).encode(),
    bytes([0]) + b'{"runtime_id":"x","start":1,"status":"exited","shim_pid":0,"pid":0,"pid_start":0,'
                 b'"started_at_ms":0,"exit_code":127,"reason":"exited","error":"cannot execute"}',
    bytes([0]) + b'{"runtime_id":"x","start":1,"status":"running","shim_pid":-1,"pid":1,"pid_start":0,"started_at_ms":0}',
    bytes([0]) + b'{"runtime_id":"x","start":18446744073709551616,"status":"zombie"}',
    bytes([0]) + b'{"runtime_id":',
    bytes([1]) + json.dumps({"runtime_id": RID, "container_id": "0193a1c2-0000-7000-8000-00000000c001",
                             "instance": "i-1", "spec_version": 3, "name": "web",
                             "command": ["python3", "-m", "http.server", "8080"], "env": {"FOO": "bar"},
                             "ports": [8080], "limits": {"memory_bytes": 134217728, "cpus": 0.5, "pids": 64},
                             "log": {"max_bytes": 1048576, "files": 3}}).encode(),
    bytes([1]) + b'{"runtime_id":"r","container_id":"c","instance":"i","spec_version":0,"command":[]}',
    bytes([1]) + b'{"runtime_id":"r","container_id":"c","instance":"i","spec_version":0,"command":["a"],'
                 b'"ports":[0,65536],"limits":{"cpus":-1e999}}',
    bytes([1]) + b'{"runtime_id":"r","container_id":"c","instance":"i","spec_version":0,"command":["a"],"log":{"files":101}}',
    bytes([2]) + RID.encode(),
    bytes([2]) + b"proc-../../etc-1",
    bytes([2]) + b"proc--1",
    bytes([2]) + b"proc-abc-0001",
    bytes([2]) + b"proc-abc-99999999999999999999",
    bytes([3]) + b"\x05hello\nworld\r\npartial",
    bytes([3]) + b"\x00" + b"y" * 40000 + b"\n\n\n",
])

# ---- (h) browser: first byte picks the parser (0 static path, 1 cookie, 2 origin, 3 negotiation) ----
def pick(n, text):
    return bytes([n]) + (text.encode() if isinstance(text, str) else text)


write("browser", [
    pick(0, "/"),
    pick(0, "/index.html?v=1"),
    pick(0, "/assets/app-3F2A9C1B.js"),
    pick(0, "/assets/app-3F2A9C1B.js.map"),
    pick(0, "/../etc/passwd"),
    pick(0, "/%2e%2e/%2E%2E/secret"),
    pick(0, "/assets%2fapp.js"),
    pick(0, "/a%5cb/.git/config"),
    pick(0, "//a///b"),
    pick(0, "/a%20b/c%41d.txt#frag"),
    pick(0, b"/\xff%ff%00%"),
    pick(1, "atrium_session=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    pick(1, "theme=dark; atrium_session=abc; lang=en"),
    pick(1, "a=1, atrium_session=\"abc\""),
    pick(1, "atrium_session=abc; atrium_session=def"),
    pick(1, "atrium_session; =x; ;;==;"),
    pick(1, b"atrium_session=\xff\x00\\"),
    pick(2, "https://Console.Example:5173/"),
    pick(2, "http://127.0.0.1:8080\n127.0.0.1:8080"),
    pick(2, "HTTPS://atrium.example\natrium.example"),
    pick(2, "null\n"),
    pick(2, "http://127.0.0.1:8080.evil\n127.0.0.1:8080"),
    pick(2, "https://user@host/path"),
    pick(3, "gzip, deflate, br\n\"e-gz\""),
    pick(3, "br;q=1.0, gzip;q=0\nW/\"e\", *"),
    pick(3, "*;q=0.000\n,,,"),
    pick(3, "x-gzip;q=0.5\n\"e\""),
    # 4: finish_representation (method, Accept-Encoding, If-None-Match, body); 5: media type, If-Match.
    pick(4, "GET\ngzip\n\n" + "{\"projects\":[" + ",".join(["{\"id\":\"x\"}"] * 200) + "]}"),
    pick(4, "HEAD\ngzip;q=0\n*\n{}"),
    pick(4, "GET\n*\n\"7-gz\", W/\"7\"\n" + "a" * 2000),
    pick(4, "POST\ngzip\n*\n" + "b" * 3000),
    pick(5, "application/json; charset=utf-8\n\"3\""),
    pick(5, "text/plain\n*"),
    pick(5, "\nW/\"12-gz\""),
    pick(5, "APPLICATION/JSON\n99999999999999999999999"),
])

# ---- (i) change_set (co-edited cells: document, NUL, ChangeSet JSON) ---------------------------
write("change_set", [
    b"select 1\0[8,[0,\" -- x\"]]",
    "hello world\0[5,[0,\",\"],6]".encode(),
    "Gr\u00f6\u00dfe\0[3,[0,\"-\"],2]".encode(),
    "a\U0001F600b\0[1,[2,\"\U0001F389\"],1]".encode(),
    "a\U0001F600b\0[2,[0,\"x\"],2]".encode(),  # cuts the surrogate pair
    "a\U0001F600b\0[3]".encode(),  # counted in code points: the wrong length
    b"abc\0[[3]]",
    b"\0[[0,\"new\",\"line\"]]",
    b"\0[]",
    b"x\r\ny\0[1,[2,\"\",\"\"],1]",
    b"abc\0[-1]",
    b"abc\0[9007199254740991,9007199254740991]",
    b"abc\0[[1.5]]",
    b"abc\0[[3,\"a\\nb\"]]",
    b"abc\0[[[[[3]]]]]",
    b"abc\0{\"a\":[3]}",
])

# ---- (j) docker: first byte picks (0 log stream, 1 raw log, 2 inspect, 3 event, 4 host/image/time) ----
def frame(stream, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


INSPECT = {
    "Id": "9b1f0c3c2a5d4e6f9b1f0c3c2a5d4e6f9b1f0c3c2a5d4e6f9b1f0c3c2a5d4e6f",
    "State": {"Status": "exited", "Running": False, "OOMKilled": False, "Dead": False, "Pid": 0,
              "ExitCode": 137, "StartedAt": "2026-12-04T22:14:14.599477144Z", "FinishedAt": "2026-12-04T22:15:00Z"},
    "Name": "/atrium-web-c0ffee00",
    "Config": {"Tty": False, "Labels": {"atrium.container_id": "c0ffee00-1", "atrium.instance": "inst",
                                        "atrium.spec_version": "7"}},
}
RUNNING = json.loads(json.dumps(INSPECT))
RUNNING["State"].update({"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0})
EVENT = {"status": "die", "id": "abc123", "Type": "container", "Action": "die",
         "Actor": {"ID": "abc123", "Attributes": {"atrium.container_id": "c1", "atrium.instance": "inst",
                                                  "exitCode": "137", "name": "atrium-web-c1"}},
         "scope": "local", "time": 1764886454, "timeNano": 1764886454599477144}
DESTROY = json.loads(json.dumps(EVENT))
DESTROY.update({"status": "destroy", "Action": "destroy"})
OOM = json.loads(json.dumps(EVENT))
OOM.update({"status": "oom", "Action": "oom"})


def js(doc):
    return json.dumps(doc, separators=(",", ":")).encode()


write("docker", [
    pick(0, b"\x80" + frame(1, "one\ntwo\n") + frame(2, "err\r\n") + frame(1, "last")),
    pick(0, b"\x10" + frame(1, "a" * 16383 + "\u00e9" + "b" * 20000 + "\n")),
    pick(0, b"\x40" + frame(1, b"\xff" * 17000 + b"\n")),
    pick(0, b"\x00" + frame(0, "stdin\n") + frame(1, "") + frame(3, "bad")),
    pick(0, b"\xff" + bytes([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]) + b"partial"),
    pick(0, b"\x20" + frame(1, "ok\n")[:5]),
    pick(1, b"\x80" + b"tty line\r\nnext\nno newline"),
    pick(2, b"\x00" + js(INSPECT)),
    pick(2, b"\x00" + js(RUNNING)),
    pick(2, b"\x00" + b'{"Id":"abc","State":{"Status":"dead","ExitCode":1e400,"OOMKilled":"yes"}}'),
    pick(2, b"\x00" + b'{"Id":"../x","State":{"Status":"running"}}'),
    pick(2, b"\x00" + b"[" * 100),
    pick(3, b"\x00" + js(EVENT)),
    pick(3, b"\x00" + js(DESTROY)),
    pick(3, b"\x00" + js(OOM)),
    pick(3, b"\x00" + b'{"Type":"container","Action":"die","Actor":{"ID":"a","Attributes":{"atrium.instance":"inst","exitCode":"-99999999999"}}}'),
    pick(4, b"\x00" + b"unix:///var/run/docker.sock\nbusybox\n2026-12-04T22:14:14.599477144Z"),
    pick(4, b"\x00" + b"tcp://127.0.0.1:2375\nregistry.local:5000/team/app:1.2\n0001-01-01T00:00:00Z"),
    pick(4, b"\x00" + b"unix://rel\napp@sha256:abcd\n2026-12-04T23:14:14+01:00"),
])

# ---- (k) row_codec: stored projection rows, MessagePack (nlohmann's encoding) or JSON text ----
def msgpack_map(pairs):
    """A MessagePack fixmap of short str keys and small values (enough for seeds)."""
    out = bytes([0x80 | len(pairs)])
    for k, v in pairs:
        kb = k.encode()
        out += bytes([0xA0 | len(kb)]) + kb
        if isinstance(v, bool):
            out += b"\xc3" if v else b"\xc2"
        elif isinstance(v, int):
            out += bytes([v])  # positive fixint
        elif v is None:
            out += b"\xc0"
        else:
            vb = v if isinstance(v, bytes) else v.encode()
            out += bytes([0xA0 | len(vb)]) + vb
    return out


write("row_codec", [
    msgpack_map([("name", "Atrium"), ("version", 3), ("archived", False), ("owner", None)]),
    msgpack_map([("bad", b"cut \xe2\x82")]),
    b"\x92\x01\xa1x",
    b"\x80",
    b"\xde\x00\x01\xa1k\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18",
    b"\xdf\xff\xff\xff\xff",
    b"\x81\xa1k",
    b"\x80\x00",
    '{"name":"Atrium","members":[{"user_id":"u1","role":"owner"}],"version":3}',
    ' \n{"k": "caf\\u00e9"}',
    '"just text"',
    "-12.5e3",
    "null",
    '{"k":',
    "",
])

print("seeds written under", CORPUS)
