"""A loopback HTTP server implementing Pinecone's data-plane REST API (API version 2026-07) for tests.

Implements what the SDK sends: POST /vectors/upsert, POST /query, POST /vectors/delete, GET
/vectors/fetch and POST /describe_index_stats, with namespaces, dense (cosine) or sparse (dot product)
scoring, and the metadata filter operators $eq, $ne, $in, $nin, $exists, $and, $or. It can answer the next
requests with an error status, to exercise retries. Nothing here is a Pinecone emulator beyond that.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def matches(metadata: dict[str, Any], flt: dict[str, Any] | None) -> bool:
    if not flt:
        return True
    for key, cond in flt.items():
        if key == "$and":
            if not all(matches(metadata, c) for c in cond):
                return False
            continue
        if key == "$or":
            if not any(matches(metadata, c) for c in cond):
                return False
            continue
        value = metadata.get(key)
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, arg in ops.items():
            if op == "$exists":
                if (key in metadata) != arg:
                    return False
                continue
            if key not in metadata:  # a record without the field: only the negations hold
                ok = op in ("$ne", "$nin")
            else:
                ok = _holds(op, arg, value if isinstance(value, list) else [value])
            if not ok:
                return False
    return True


def _holds(op: str, arg: Any, values: list[Any]) -> bool:
    if op == "$eq":
        return arg in values
    if op == "$ne":
        return arg not in values
    if op == "$in":
        return any(v in arg for v in values)
    if op == "$nin":
        return all(v not in arg for v in values)
    raise ValueError(f"unsupported filter operator {op}")


@dataclass
class IndexState:
    kind: str  # "dense" | "sparse"
    namespaces: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer with, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def score(self, record: dict[str, Any], body: dict[str, Any]) -> float:
        if self.kind == "dense":
            q, v = body["vector"], record["values"]
            dot = sum(a * b for a, b in zip(q, v, strict=True))
            return dot / ((math.sqrt(sum(a * a for a in q)) * math.sqrt(sum(b * b for b in v))) or 1.0)
        sparse = record.get("sparseValues") or {"indices": [], "values": []}
        weights = dict(zip(sparse["indices"], sparse["values"], strict=True))
        q = body["sparseVector"]
        return sum(w * weights.get(i, 0.0) for i, w in zip(q["indices"], q["values"], strict=True))

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((path, body))
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, {"error": {"code": "RESOURCE_EXHAUSTED", "message": "too many requests"}}
            url = urlparse(path)
            if url.path == "/vectors/upsert":
                ns = self.namespaces.setdefault(body.get("namespace", ""), {})
                for record in body["vectors"]:
                    if self.kind == "dense" and not record.get("values"):
                        return 400, {"error": {"code": "INVALID_ARGUMENT", "message": "dense vector required"}}
                    ns[record["id"]] = record
                return 200, {"upsertedCount": len(body["vectors"])}
            if url.path == "/query":
                ns = self.namespaces.get(body.get("namespace", ""), {})
                scored = [
                    (self.score(r, body), r) for r in ns.values() if matches(r.get("metadata", {}), body.get("filter"))
                ]
                scored.sort(key=lambda pair: pair[0], reverse=True)
                found = [
                    {
                        "id": r["id"],
                        "score": s,
                        **({"metadata": r.get("metadata", {})} if body.get("includeMetadata") else {}),
                    }
                    for s, r in scored[: body["topK"]]
                ]
                return 200, {"matches": found, "namespace": body.get("namespace", ""), "usage": {"readUnits": 1}}
            if url.path == "/vectors/delete":
                ns_name = body.get("namespace", "")
                if body.get("deleteAll"):
                    self.namespaces.pop(ns_name, None)
                else:
                    for rid in body.get("ids", []):
                        self.namespaces.get(ns_name, {}).pop(rid, None)
                return 200, {}
            if url.path == "/vectors/fetch":
                query = parse_qs(url.query)
                ns = self.namespaces.get(query.get("namespace", [""])[0], {})
                vectors = {rid: ns[rid] for rid in query.get("ids", []) if rid in ns}
                return 200, {
                    "vectors": vectors,
                    "namespace": query.get("namespace", [""])[0],
                    "usage": {"readUnits": 1},
                }
            if url.path == "/describe_index_stats":
                counts = {name: {"vectorCount": len(ns)} for name, ns in self.namespaces.items() if ns}
                total = sum(c["vectorCount"] for c in counts.values())
                return 200, {"namespaces": counts, "dimension": 384, "indexFullness": 0.0, "totalVectorCount": total}
            return 404, {"error": {"code": "NOT_FOUND", "message": path}}


@contextmanager
def pinecone_server(kind: str) -> Iterator[tuple[str, IndexState]]:
    state = IndexState(kind=kind)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _reply(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length)) if length else None
            if self.headers.get("api-key") != "pc-test":
                status, payload = 401, {"error": {"code": "UNAUTHENTICATED", "message": "bad api key"}}
            else:
                status, payload = state.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
