"""`ragapi chat`: questions piped on standard input, answered with citations and the searched question, kept
as the operator's conversation; `/exit` or the end of input ends it, and `--conversation` goes on with it."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ragapi.api.cli import app
from ragapi.core.database import Database, with_driver
from ragapi.tenants.service import OPERATOR


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_chat_over_standard_input(cli_env: CliRunner, tmp_path: Path, db: Database) -> None:
    tenant_id = json.loads(run(cli_env, "tenants", "create", "chat-co", "--json"))["tenant_id"]
    (tmp_path / "printer.txt").write_text("The Falcon printer is located on floor 3, next to the kitchen.")
    (tmp_path / "coffee.txt").write_text("The Orion coffee machine is located in the lobby on floor 1.")
    run(cli_env, "ingest", str(tmp_path), "--tenant", tenant_id)

    talk = "What is the Falcon printer?\n\nWhere is it located?\n" + "x" * 2001 + "\n/exit\nWhat is Orion?\n"
    result = cli_env.invoke(app, ["chat", "--tenant", tenant_id, "--title", "Office"], input=talk)
    assert result.exit_code == 0, result.output
    out = result.stdout
    conversation_id = re.match(r"conversation: ([0-9a-f-]{36})\n", out).group(1)  # type: ignore[union-attr]
    assert "floor 3" in out and "  [1] printer  (document " in out
    assert "  searched: What is the Falcon printer?\n" in out
    assert "  searched: What is the Falcon printer? Where is it located?\n" in out
    assert "query is longer than 2000 characters" in result.stderr  # that question alone; the chat went on
    assert "Orion" not in out  # after /exit

    resumed = run(cli_env, "chat", "-t", tenant_id, "--conversation", conversation_id, stdin="And the coffee machine?")
    # the question that set the subject and the one before, then the follow-up
    assert "  searched: What is the Falcon printer? Where is it located? And the coffee machine?" in resumed

    engine = create_engine(with_driver(db.url, "psycopg"))  # the CLI runs its own event loop: read synchronously
    with engine.connect() as conn:
        kept = conn.execute(
            text("SELECT owner_kind, owner_id, title, message_count FROM conversations WHERE id = :c"),
            {"c": conversation_id},
        ).one()
        roles = conn.execute(
            text("SELECT role FROM conversation_messages WHERE conversation_id = :c ORDER BY ord"),
            {"c": conversation_id},
        ).scalars()
        logged = conn.execute(
            text("SELECT count(*) FROM query_log WHERE tenant_id = :t AND surface = 'cli'"), {"t": tenant_id}
        ).scalar_one()
    engine.dispose()
    assert tuple(kept) == ("operator", OPERATOR, "Office", 6)
    assert list(roles) == ["user", "assistant"] * 3 and logged == 3

    someone_elses = cli_env.invoke(app, ["chat", "-t", tenant_id, "-c", str(uuid.uuid4())], input="hello\n")
    assert someone_elses.exit_code == 1 and "no such conversation" in someone_elses.output
    assert cli_env.invoke(app, ["chat", "-t", tenant_id, "-c", "nope"]).exit_code == 2
    assert cli_env.invoke(app, ["chat", "-t", tenant_id, "--title", "x" * 201]).exit_code == 2
    assert run(cli_env, "chat", "-t", tenant_id, stdin="").startswith("conversation: ")  # nothing asked
