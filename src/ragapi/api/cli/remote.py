"""The commands' remote forms, through the Python client (`ragapi.client`) against a running service:
ingest with a progress bar fed by the job events, query, chat, knowledge bases, and the groups that exist
only remotely (documents, keys). A refusal prints the problem's detail and request id and exits 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragapi.api.cli.base import (
    ApiKeyOption,
    Remote,
    TokenOption,
    UrlOption,
    app,
    console,
    progress_bar,
    remote,
)
from ragapi.api.cli.output import FileOutcome, report

if TYPE_CHECKING:  # imported when a remote command runs: the local ones do not pay for the client
    from ragapi.client import Client, IngestProgress

documents_app = typer.Typer(help="A service's documents (--url)", no_args_is_help=True)
app.add_typer(documents_app, name="documents")
keys_app = typer.Typer(help="A service's API keys (--url, an admin key or token)", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@contextmanager
def client(where: Remote) -> Iterator[Client]:
    """The client, with a refusal or an unreachable service reported as a one-line error (exit 1)."""
    from ragapi.client import ApiError, Client, ClientError

    try:
        with Client(where.url, api_key=where.api_key, token=where.token) as rag:
            yield rag
    except ApiError as exc:
        request = f", request {exc.request_id}" if exc.request_id else ""
        console.print(f"[red]error:[/red] {exc.detail} ({exc.status} {exc.title}{request})")
        raise typer.Exit(code=1) from exc
    except ClientError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


# --- the remote forms of dual commands (called from `ragapi.api.cli.local`) --------------------------------


def ingest(
    where: Remote,
    paths: Sequence[Path],
    batch: int,
    knowledge_base: str | None,
    verbose: bool,
    as_json: bool,
) -> None:
    with client(where) as rag, progress_bar() as bar:
        task = bar.add_task("ingesting", total=None)

        def moved(p: IngestProgress) -> None:
            bar.update(task, completed=p.files_done, total=p.files_total)

        result = rag.ingest_files(paths, knowledge_base=knowledge_base, batch_files=batch, on_progress=moved)
    files = [FileOutcome.of(d.model_dump(mode="json")) for d in result.documents]
    where_to = f"knowledge base '{knowledge_base}'" if knowledge_base else "the default knowledge base"
    jobs = {"jobs": [str(j.job_id) for j in result.jobs]}
    report(files, result.seconds, f"{where_to} at {where.url}", verbose=verbose, as_json=as_json, extra=jobs)


def query(where: Remote, text: str, top_k: int | None, knowledge_bases: list[str] | None, as_json: bool) -> None:
    with client(where) as rag:
        answer = rag.query(text, knowledge_bases=knowledge_bases, top_k=top_k)
    if as_json:
        _echo_json(answer.model_dump(mode="json"))
        return
    typer.echo(answer.answer)
    for c in answer.citations:
        typer.echo(f"  [{c.n}] {c.title}  (document {c.document_id})")


def chat(
    where: Remote,
    conversation: str | None,
    title: str | None,
    top_k: int | None,
    knowledge_bases: list[str] | None,
) -> None:
    """As the local chat: a question per line of standard input, the answer streamed as it is written."""
    from ragapi.client import ApiError, Finished, Token

    with client(where) as rag:
        if conversation is not None:
            conversation_id = str(rag.conversation(conversation).id)
        else:
            conversation_id = str(rag.create_conversation(title=title, knowledge_bases=knowledge_bases or ()).id)
        typer.echo(f"conversation: {conversation_id}")
        prompt = sys.stdin.isatty()
        while True:
            if prompt:
                console.print("> ", end="")
            line = sys.stdin.readline()
            text = line.strip()
            if not line or text == "/exit":
                return
            if not text:
                continue
            try:
                for event in rag.stream_ask(conversation_id, text, top_k=top_k):
                    if isinstance(event, Token):
                        typer.echo(event.text, nl=False)
                    elif isinstance(event, Finished):
                        typer.echo("")
                        for c in event.answer.citations:
                            typer.echo(f"  [{c.n}] {c.title}  (document {c.document_id})")
                        typer.echo(f"  searched: {getattr(event.answer, 'standalone_question', text)}\n")
            except ApiError as exc:  # this question only: the conversation goes on
                console.print(f"[red]error:[/red] {exc.detail}")


def knowledge_bases_list(where: Remote) -> None:
    with client(where) as rag:
        for kb in rag.knowledge_bases():
            typer.echo(json.dumps(_kb_json(kb.model_dump(mode="json"))))


def knowledge_bases_create(where: Remote, name: str, description: str, settings: dict[str, Any]) -> None:
    with client(where) as rag:
        kb = rag.create_knowledge_base(name, description=description, settings=settings)
    typer.echo(json.dumps(_kb_json(kb.model_dump(mode="json"))))


def knowledge_bases_delete(where: Remote, ref: str) -> None:
    """Starts the deletion; the service finishes it (its GET shows the progress)."""
    with client(where) as rag:
        kb = rag.delete_knowledge_base(ref)
    typer.echo(json.dumps({"id": str(kb.id), "name": kb.name, "deleting": True}))


def feedback_export(where: Remote, folder: Path, knowledge_base: str | None) -> None:
    from ragapi.evaluation.beir import write_beir

    with client(where) as rag:
        exported = rag.export_feedback(knowledge_base=knowledge_base).model_dump(mode="json")
    write_beir(folder, exported)
    typer.echo(json.dumps({"queries": len(exported["queries"]), "qrels": len(exported["qrels"])}))


def _kb_json(kb: dict[str, Any]) -> dict[str, Any]:
    """The local listing's fields, from the API's."""
    keys = ("id", "name", "default", "status", "chunks", "settings")
    return {key: kb[key] for key in keys}


# --- remote-only groups -----------------------------------------------------------------------------------


@documents_app.command("list")
def documents_list(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    knowledge_base: Annotated[str | None, typer.Option("--knowledge-base", "-k", help="Only this one")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (default: all, page after page)")] = None,
) -> None:
    """The documents the credential may read, newest first, as JSON lines."""
    with client(remote(url, api_key, token)) as rag:
        for n, document in enumerate(rag.documents(knowledge_base=knowledge_base)):
            if limit is not None and n >= limit:
                break
            typer.echo(document.model_dump_json())


@documents_app.command("get")
def documents_get(
    document_id: Annotated[str, typer.Argument(help="Its id")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """One document, as JSON."""
    with client(remote(url, api_key, token)) as rag:
        _echo_json(rag.document(document_id).model_dump(mode="json"))


@documents_app.command("delete")
def documents_delete(
    document_id: Annotated[str, typer.Argument(help="Its id")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a document with its chunks and vectors."""
    with client(remote(url, api_key, token)) as rag:
        rag.delete_document(document_id)
    typer.echo(json.dumps({"document_id": document_id, "deleted": True}))


@app.command()
def analytics(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    days: Annotated[int, typer.Option(help="The last this many days")] = 7,
    interval: Annotated[str, typer.Option(help="hour or day")] = "day",
    group_by: Annotated[str | None, typer.Option(help="key, user or knowledge_base")] = None,
    knowledge_base: Annotated[str | None, typer.Option("--knowledge-base", "-k", help="Only this one")] = None,
) -> None:
    """A service's analytics report as JSON (--url, an admin key or token): volume, errors, latency per
    stage, cache, tokens, cost, feedback, top and poorly answered queries."""
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC)
    with client(remote(url, api_key, token)) as rag:
        report_ = rag.analytics(
            start=end - timedelta(days=days),
            end=end,
            interval=interval,
            group_by=group_by,
            knowledge_base=knowledge_base,
        )
    _echo_json(report_)


@keys_app.command("list")
def keys_list(url: UrlOption = None, api_key: ApiKeyOption = None, token: TokenOption = None) -> None:
    """The tenant's API keys (never the keys themselves), as JSON lines."""
    with client(remote(url, api_key, token)) as rag:
        for key in rag.api_keys():
            typer.echo(key.model_dump_json())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for")],
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="query, feedback, ingest or admin; repeat")],
    knowledge_bases: Annotated[
        list[str] | None, typer.Option("--knowledge-base", "-k", help="Restrict it to this one; repeat")
    ] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Create a key; it is printed once (store it now)."""
    from pydantic import ValidationError

    with client(remote(url, api_key, token)) as rag:
        try:
            created = rag.create_api_key(name, scope, knowledge_bases=knowledge_bases, rate_limit_per_minute=rate_limit)
        except ValidationError as exc:
            raise typer.BadParameter(exc.errors()[0]["msg"]) from exc
    _echo_json(created.model_dump(mode="json"))


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Its id (from `ragapi keys list`)")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a key: it fails from the next request on."""
    with client(remote(url, api_key, token)) as rag:
        rag.revoke_api_key(key_id)
    typer.echo(json.dumps({"id": key_id, "revoked": True}))
