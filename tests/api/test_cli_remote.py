"""`ragapi` against a running service (`--url`/`--api-key` or RAGAPI_URL/RAGAPI_API_KEY), run as a user runs
it (a subprocess): folder ingest with progress and a one-line outcome, query, chat, documents, knowledge
bases, keys; another tenant's key sees nothing; local-only commands say so."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.corpus import PAGES, write_corpus
from tests.conftest import Served, TenantHandle

pytestmark = pytest.mark.slow


def ragapi(
    *args: str, key: str | None = None, url: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGAPI_")}
    if url is not None:
        env["RAGAPI_URL"] = url
    if key is not None:
        env["RAGAPI_API_KEY"] = key
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "ragapi.api.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


@pytest.fixture(scope="module")
def tenant(served: Served) -> TenantHandle:
    return served.tenant("cli-remote")


@pytest.fixture(scope="module")
def ingested(served: Served, tenant: TenantHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_corpus(tmp_path_factory.mktemp("remote-handbook"))
    done = ragapi("ingest", str(folder), "--batch", "3", key=tenant.api_key, url=served.url)
    out = ok(done)
    line = f"{len(PAGES)} files into the default knowledge base at {served.url} in "
    assert out.startswith(line) and out.count("\n") == 1, out
    assert re.search(rf": {len(PAGES)} created; \d+ chunks\n$", out)
    assert f"{len(PAGES)}/{len(PAGES)}" in done.stderr  # the progress bar, fed by the job events, reached the end
    return folder


def test_ingest_reports_a_line_a_table_or_json(served: Served, tenant: TenantHandle, ingested: Path) -> None:
    flags = ["--url", served.url, "--api-key", tenant.api_key]
    table = ok(ragapi("ingest", str(ingested / "hr"), "--verbose", *flags))
    assert "vacation.md" in table and "parental.txt" in table and "duplicate" in table
    full = json.loads(ok(ragapi("ingest", str(ingested / "it"), "--json", *flags)))
    assert full["files"] == 3 and full["counts"] == {"duplicate": 3} and len(full["jobs"]) == 1
    assert {d["filename"] for d in full["documents"]} == {"vpn.md", "laptops.txt", "passwords.md"}


def test_query_chat_and_documents(served: Served, tenant: TenantHandle, ingested: Path) -> None:
    key, url = tenant.api_key, served.url
    answer = ok(ragapi("query", "How many vacation days does an employee get?", key=key, url=url))
    assert "27 vacation days" in answer and "  [1] Vacation  (document " in answer
    full = json.loads(ok(ragapi("query", "Where is visitor parking?", "--json", key=key, url=url)))
    assert "garage B" in full["answer"]

    talk = ok(ragapi("chat", key=key, url=url, stdin="What is the VPN endpoint?\nWhich port does it listen on?\n"))
    assert talk.startswith("conversation: ") and "vpn.example.com" in talk and "4433" in talk
    assert "  searched: What is the VPN endpoint? Which port does it listen on?" in talk

    listed = [json.loads(line) for line in ok(ragapi("documents", "list", key=key, url=url)).splitlines()]
    assert len(listed) == len(PAGES)
    coffee = next(d for d in listed if d["title"] == "coffee")
    assert json.loads(ok(ragapi("documents", "get", coffee["document_id"], key=key, url=url)))["chunks"] >= 1
    ok(ragapi("documents", "delete", coffee["document_id"], key=key, url=url))
    gone = ragapi("documents", "get", coffee["document_id"], key=key, url=url)
    assert gone.returncode == 1 and "404 Not found, request " in gone.stderr


def test_knowledge_bases_and_keys(served: Served, tenant: TenantHandle) -> None:
    key, url = tenant.api_key, served.url
    made = json.loads(ok(ragapi("knowledge-bases", "create", "wiki", "--settings", '{"top_k": 2}', key=key, url=url)))
    assert made["name"] == "wiki" and made["settings"] == {"top_k": 2}
    names = [json.loads(line)["name"] for line in ok(ragapi("knowledge-bases", "list", key=key, url=url)).splitlines()]
    assert "wiki" in names
    taken = ragapi("knowledge-bases", "create", "wiki", key=key, url=url)
    assert taken.returncode == 1 and "409" in taken.stderr
    assert json.loads(ok(ragapi("knowledge-bases", "delete", "wiki", key=key, url=url)))["deleting"] is True

    created = json.loads(ok(ragapi("keys", "create", "reader", "--scope", "query", key=key, url=url)))
    assert created["api_key"].startswith("rag_") and created["scopes"] == ["query"]
    ids = [json.loads(line)["id"] for line in ok(ragapi("keys", "list", key=key, url=url)).splitlines()]
    assert created["id"] in ids and all("api_key" not in line for line in ids)
    assert ok(ragapi("query", "parental leave", key=created["api_key"], url=url))
    ok(ragapi("keys", "revoke", created["id"], key=key, url=url))
    revoked = ragapi("query", "parental leave", key=created["api_key"], url=url)
    assert revoked.returncode == 1 and "401 Unauthenticated" in revoked.stderr
    assert ragapi("keys", "create", "x", "--scope", "root", key=key, url=url).returncode == 2


def test_another_tenants_key_sees_nothing(served: Served, tenant: TenantHandle, ingested: Path) -> None:
    other = served.tenant("cli-remote-other").api_key
    mine = json.loads(ok(ragapi("documents", "list", "--limit", "1", key=tenant.api_key, url=served.url)))
    assert ok(ragapi("documents", "list", key=other, url=served.url)) == ""
    stranger = ragapi("documents", "get", mine["document_id"], key=other, url=served.url)
    assert stranger.returncode == 1 and "404" in stranger.stderr
    answer = json.loads(ok(ragapi("query", "How many vacation days?", "--json", key=other, url=served.url)))
    assert answer["citations"] == []


def test_local_only_commands_and_missing_credentials_say_so(served: Served) -> None:
    for command in (["migrate"], ["reembed", "-t", "x"], ["users", "create", "--email", "a@b.c", "--superadmin"]):
        refused = ragapi(*command, "--url", served.url)
        assert refused.returncode == 2 and "works on the local database only" in refused.stderr, refused.stderr
    no_key = ragapi("query", "anything", url=served.url)
    assert no_key.returncode == 2 and "--url needs --api-key" in no_key.stderr
    neither = ragapi("query", "anything")
    assert neither.returncode == 2 and "give --tenant" in neither.stderr
    both = ragapi("query", "anything", "--tenant", "x", "--url", served.url)
    assert both.returncode == 2
    unreachable = ragapi("documents", "list", key="rag_x", url="http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "error:" in unreachable.stderr


def test_a_failed_file_analytics_and_the_feedback_export(served: Served, tenant: TenantHandle, tmp_path: Path) -> None:
    key, url = tenant.api_key, served.url
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "fine.txt").write_text("Fire drills happen every spring.")
    failed = ragapi("ingest", str(tmp_path), key=key, url=url)
    assert failed.returncode == 1
    assert ": 1 created, 1 failed; 1 chunks\n" in failed.stdout and "  failed: empty.txt: " in failed.stdout

    from ragapi.client import Client

    with Client(url, api_key=key) as rag:
        rag.feedback(rag.query("When do fire drills happen?").query_id, 1)
    report = json.loads(ok(ragapi("analytics", "--days", "1", key=key, url=url)))
    assert report["queries"] >= 1 and report["feedback"]["positive"] >= 1
    exported = json.loads(ok(ragapi("feedback", "export", str(tmp_path / "beir"), key=key, url=url)))
    assert exported["queries"] >= 1 and (tmp_path / "beir" / "queries.jsonl").read_text().count("fire drills") >= 1
