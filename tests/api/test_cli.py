"""The `ragapi` CLI in-process: tenants, ingest with progress, query, eval on a small BEIR folder."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ragapi.api.cli import app
from ragapi.core.database import Database, with_driver
from ragapi.core.settings import Settings


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tenant_ingest_query_round_trip(cli_env: CliRunner, tmp_path: Path, db: Database) -> None:
    created = json.loads(run(cli_env, "tenants", "create", "cli-co", "--json"))
    assert set(created) == {"tenant_id", "api_key"} and created["api_key"].startswith("rag_")
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Security\n\nRotate database passwords every 90 days.")
    (folder / "sub" / "b.txt").write_text("The coffee machine is on floor 2.")
    (folder / "ignored.bin").write_bytes(b"\x00")
    ingested = json.loads(run(cli_env, "ingest", str(folder), "--tenant", created["tenant_id"], "--json"))
    assert sorted(d["status"] for d in ingested["documents"]) == ["created", "created"]
    assert ingested["files"] == 2 and ingested["counts"] == {"created": 2} and ingested["chunks"] == 2
    again = run(cli_env, "ingest", str(folder), "--tenant", created["tenant_id"])  # one line, not the JSON
    assert again.count("\n") == 1 and again.startswith("2 files into the default knowledge base in ")
    assert again.endswith(": 2 duplicate; 2 chunks\n")
    table = run(cli_env, "ingest", str(folder / "a.md"), "--tenant", created["tenant_id"], "--verbose")
    assert "a.md" in table and "duplicate" in table and "1 file into the default knowledge base" in table
    answer = run(cli_env, "query", "How often are database passwords rotated?", "--tenant", created["tenant_id"])
    assert "90 days" in answer and "[1]" in answer
    full = json.loads(run(cli_env, "query", "coffee machine", "--tenant", created["tenant_id"], "--json"))
    assert "floor 2" in full["answer"]
    engine = create_engine(with_driver(db.url, "psycopg"))  # the CLI runs its own event loop: read synchronously
    with engine.connect() as conn:  # the operator's questions are logged like any surface's
        logged = conn.execute(
            text("SELECT surface, principal_kind, query FROM query_log WHERE tenant_id = :t ORDER BY created_at"),
            {"t": created["tenant_id"]},
        )
        assert [tuple(row) for row in logged] == [
            ("cli", "operator", "How often are database passwords rotated?"),
            ("cli", "operator", "coffee machine"),
        ]
    engine.dispose()


def test_ingest_reports_failures_with_exit_code(cli_env: CliRunner, tmp_path: Path) -> None:
    tenant_id = json.loads(run(cli_env, "tenants", "create", "cli-fail", "--json"))["tenant_id"]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = cli_env.invoke(app, ["ingest", str(empty), "--tenant", tenant_id])
    assert result.exit_code == 1 and "file is empty" in result.stdout
    bad = cli_env.invoke(app, ["query", "x", "--tenant", "not-a-uuid"])
    assert bad.exit_code == 2


def test_eval_on_a_small_beir_folder(cli_env: CliRunner, tmp_path: Path) -> None:
    beir = tmp_path / "mini"
    (beir / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Volcanoes", "text": "Volcanic eruptions release ash and sulfur dioxide."},
        {"_id": "d2", "title": "Bees", "text": "Honey bees communicate with a waggle dance."},
        {"_id": "d3", "title": "Tides", "text": "Ocean tides are caused by the moon's gravity."},
    ]
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    queries = [{"_id": "q1", "text": "how do bees communicate"}, {"_id": "q2", "text": "what causes tides"}]
    (beir / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td3\t1\n")
    result = json.loads(run(cli_env, "eval", str(beir)))
    assert result["queries"] == 2 and result["documents"] == 3
    assert result["ndcg@10"] == 1.0 and result["recall@100"] == 1.0 and result["mrr@10"] == 1.0
    assert result["latency_ms_p95"] > 0
    missing = cli_env.invoke(app, ["eval", str(tmp_path)])
    assert missing.exit_code != 0


def test_tenant_cache_policy(cli_env: CliRunner, db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text

    from ragapi.core.database import with_driver

    tenant_id = json.loads(run(cli_env, "tenants", "create", "cache-co", "--json"))["tenant_id"]
    run(cli_env, "tenants", "cache", tenant_id, "--disable", "--threshold", "0.99")
    engine = create_engine(with_driver(db.url, "psycopg"))
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT cache_enabled, semantic_cache_threshold FROM tenants WHERE id = :t"), {"t": tenant_id}
        ).one()
    engine.dispose()
    assert (row[0], round(row[1], 2)) == (False, 0.99)
    assert cli_env.invoke(app, ["tenants", "cache", tenant_id, "--threshold", "0.5"]).exit_code != 0
    assert cli_env.invoke(app, ["tenants", "cache", "00000000-0000-0000-0000-000000000000", "--enable"]).exit_code != 0


def test_the_first_superadmin_comes_from_the_cli(cli_env: CliRunner, settings: Settings) -> None:

    email = "root-admin@example.com"
    result = cli_env.invoke(
        app, ["users", "create", "--email", email, "--superadmin", "--password-stdin"], input="a very long password\n"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["role"] == "superadmin"
    again = cli_env.invoke(
        app, ["users", "create", "--email", email, "--superadmin", "--password-stdin"], input="a very long password\n"
    )
    assert again.exit_code == 1 and "already exists" in again.output
    weak = cli_env.invoke(
        app, ["users", "create", "--email", "w@example.com", "--superadmin", "--password-stdin"], input="short\n"
    )
    assert weak.exit_code == 1 and "at least 12" in weak.output
    both = cli_env.invoke(app, ["users", "create", "--email", "x@example.com", "--superadmin", "--tenant", "t"])
    assert both.exit_code != 0
    tenant = json.loads(run(cli_env, "tenants", "create", "cli-users", "--json"))
    admin = cli_env.invoke(
        app,
        [
            "users",
            "create",
            "--email",
            "ta@example.com",
            "--tenant",
            tenant["tenant_id"],
            "--role",
            "admin",
            "--external-id",
            "emp-0001",
            "--password-stdin",
        ],
        input="another long password\n",
    )
    assert admin.exit_code == 0, admin.output
    assert json.loads(admin.stdout)["role"] == "admin" and json.loads(admin.stdout)["external_id"] == "emp-0001"
    same = ["users", "create", "--email", "tb@example.com", "--tenant", tenant["tenant_id"], "--password-stdin"]
    taken = cli_env.invoke(app, [*same, "--external-id", "emp-0001"], input="another long password\n")
    assert taken.exit_code == 1 and "external id" in taken.output
    spaced = cli_env.invoke(app, [*same, "--external-id", " emp"], input="another long password\n")
    assert spaced.exit_code == 1 and "external_id" in spaced.output
    root = ["users", "create", "--email", "r2@example.com", "--superadmin", "--external-id", "x", "--password-stdin"]
    assert cli_env.invoke(app, root, input="a very long password\n").exit_code == 1


def test_knowledge_bases_from_the_cli(cli_env: CliRunner, tmp_path: Path) -> None:
    tenant_id = json.loads(run(cli_env, "tenants", "create", "cli-kb", "--json"))["tenant_id"]
    made = json.loads(
        run(cli_env, "knowledge-bases", "create", "wiki", "--tenant", tenant_id, "--settings", '{"top_k": 1}')
    )
    assert made["name"] == "wiki" and made["settings"] == {"top_k": 1} and not made["default"]
    bad = cli_env.invoke(app, ["knowledge-bases", "create", "x", "--tenant", tenant_id, "--settings", '{"top_k": 0}'])
    assert bad.exit_code == 2 and "settings.top_k" in bad.output
    (tmp_path / "w.txt").write_text("Deployments roll back automatically. Staging is rebuilt nightly.")
    (tmp_path / "h.txt").write_text("Employees get 27 days of annual leave.")
    run(cli_env, "ingest", str(tmp_path / "w.txt"), "--tenant", tenant_id, "--knowledge-base", "wiki")
    run(cli_env, "ingest", str(tmp_path / "h.txt"), "--tenant", tenant_id)
    wiki = json.loads(run(cli_env, "query", "annual leave", "--tenant", tenant_id, "-k", "wiki", "--json"))
    assert [c["title"] for c in wiki["citations"]] == ["w"]  # the wiki only, and its own top_k
    both = json.loads(
        run(cli_env, "query", "leave and staging", "-t", tenant_id, "-k", "default", "-k", "wiki", "--json")
    )
    assert {c["title"] for c in both["citations"]} == {"w", "h"}  # the first named decides top_k
    listed = [json.loads(line) for line in run(cli_env, "knowledge-bases", "list", "--tenant", tenant_id).splitlines()]
    assert [(kb["name"], kb["default"]) for kb in listed] == [("wiki", False), ("default", True)]
    run(cli_env, "knowledge-bases", "delete", "wiki", "--tenant", tenant_id)
    gone = cli_env.invoke(app, ["query", "x", "--tenant", tenant_id, "-k", "wiki"])
    assert gone.exit_code == 1 and "no such knowledge base" in gone.output
