"""The commands that work in-process against the local database (the embedded one is shared between
processes, so they need no running API): serving, migrating, tenants, users, re-embedding, vectors,
evaluation, and the local forms of ingest, query, chat and knowledge bases (`--tenant`)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ragapi.api.cli import remote
from ragapi.api.cli.base import (
    ApiKeyOption,
    KnowledgeBaseOption,
    LocalOnlyUrl,
    OptionalTenantOption,
    Remote,
    TokenOption,
    UrlOption,
    app,
    checked_text,
    console,
    feedback_app,
    kb_app,
    kb_id_of,
    knowledge_base_of,
    local_only,
    parse_uuid,
    progress_bar,
    required_tenant,
    run_local,
    target,
    tenant_uuid,
    tenants_app,
    users_app,
    vectors_app,
)
from ragapi.core.errors import RagApiError
from ragapi.core.settings import get_settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT)")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the REST API, SSE and LangServe routes."""
    import uvicorn

    from ragapi.core.logs import dict_config

    # The options become the settings of every worker process, so that what the service says at
    # start-up (its URL) is where it answers.
    if host is not None:
        os.environ["HOST"] = host
    if port is not None:
        os.environ["PORT"] = str(port)
    get_settings.cache_clear()
    settings = get_settings()
    embedded = settings.data_dir if settings.database_url is None else None
    uvicorn.run(
        "ragapi.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=dict_config(settings.log_level, settings.log_format.value, embedded),
        access_log=False,
        # X-Forwarded-For and -Proto count only from TRUSTED_PROXIES (uvicorn would trust loopback by
        # default and rewrite the client address before the rate limits see it)
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        timeout_keep_alive=settings.keepalive_timeout_s,
        # a little past the drain deadline, so streams cut at the deadline can send their last event
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s) + 2,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes (each loads the embedding model)")] = 1,
) -> None:
    """Run a Celery ingestion worker (needs CELERY_BROKER_URL; the API must have migrated the database)."""
    import logging.config

    settings = get_settings()
    if settings.celery_broker_url is None:
        console.print("[red]error:[/red] CELERY_BROKER_URL is not set; `ragapi serve` ingests in-process without it")
        raise typer.Exit(code=2)
    if settings.worker_metrics_port is not None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Tasks run in forked pool processes: their metrics reach the parent's /metrics through files
        # in this directory (prometheus_client must see it before it is imported).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ragapi-metrics-")
    from ragapi.core import sentry, tracing
    from ragapi.core.logs import dict_config
    from ragapi.core.metrics import serve_metrics
    from ragapi.ingestion import celery_app

    logging.config.dictConfig(dict_config(settings.log_level, settings.log_format.value))
    sentry.setup(settings, celery=True)
    tracing.setup("ragapi-worker")
    if settings.worker_metrics_port is not None:
        serve_metrics(settings.worker_metrics_port)
    celery_app.configure(settings).worker_main(
        ["worker", "--queues", celery_app.QUEUE, "--concurrency", str(concurrency), "--loglevel", settings.log_level]
    )


@app.command()
def migrate(
    wait: Annotated[
        float | None,
        typer.Option(
            help="Apply nothing: wait up to this many seconds for the schema to reach this build's "
            "(an init container while a migration job runs)"
        ),
    ] = None,
    url: LocalOnlyUrl = None,
) -> None:
    """Apply database migrations (also done at start-up unless MIGRATE_ON_START=false). Local only."""
    local_only(url, "ragapi migrate")
    import time

    from sqlalchemy.exc import DBAPIError

    from ragapi.core.database import resolve_database_url
    from ragapi.core.migrate import SchemaBehind, require_head, upgrade

    settings = get_settings()
    url = resolve_database_url(settings)
    if wait is None:
        from ragapi.tenants.sealed import box_for

        upgrade(url, settings.db_app_role, seal=lambda secret: box_for(settings).seal(secret))
        console.print("migrations applied")
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            require_head(url)
        except SchemaBehind as exc:
            if time.monotonic() >= deadline:
                console.print(f"[red]error:[/red] {exc.detail}")
                raise typer.Exit(code=1) from exc
            time.sleep(2)
        except (OSError, DBAPIError) as exc:  # the database itself is not up (or not resolvable) yet
            if time.monotonic() >= deadline:
                raise
            console.print(f"waiting for the database: {type(exc).__name__}")
            time.sleep(2)
        else:
            console.print("schema is current")
            return


@app.command()
def healthcheck(
    url: Annotated[str | None, typer.Option(help="What to GET; default http://127.0.0.1:PORT/healthz")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds")] = 3.0,
) -> None:
    """Exit 0 when the local server answers 2xx (the image's HEALTHCHECK; no curl in a slim image)."""
    import httpx

    target = url or f"http://127.0.0.1:{get_settings().port}/healthz"
    try:
        ok = httpx.get(target, timeout=timeout).is_success
    except httpx.HTTPError:
        ok = False
    if not ok:
        raise typer.Exit(code=1)


@tenants_app.command("create")
def tenants_create(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print {tenant_id, api_key} as JSON")] = False,
    url: LocalOnlyUrl = None,
) -> None:
    """Create a tenant and print its first API key (admin scope). The key is shown only once. Local only
    (a superadmin creates tenants remotely with POST /v1/tenants)."""
    local_only(url, "ragapi tenants create")
    from ragapi.tenants.service import create_tenant

    checked_text(name, "name")
    created = run_local(lambda state: create_tenant(state.db, name))
    if as_json:
        typer.echo(json.dumps({"tenant_id": str(created.tenant_id), "api_key": created.api_key}))
    else:
        typer.echo(f"tenant_id: {created.tenant_id}\napi_key:   {created.api_key}  (shown once; store it now)")


@tenants_app.command("cache")
def tenants_cache(
    tenant: Annotated[str, typer.Argument(help="Tenant id")],
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Switch the answer cache")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Semantic threshold (0.8-1.0; the global one is a floor)")
    ] = None,
    url: LocalOnlyUrl = None,
) -> None:
    """Set a tenant's answer-cache policy. Local only."""
    local_only(url, "ragapi tenants cache")
    from ragapi.tenants.service import set_cache_policy

    tenant_id = tenant_uuid(tenant)
    run_local(lambda state: set_cache_policy(state.db, tenant_id, enable, threshold))
    typer.echo("cache policy updated")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Sign-in e-mail")],
    superadmin: Annotated[bool, typer.Option("--superadmin", help="A superadmin (manages tenants)")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant id (not for superadmins)")] = None,
    role: Annotated[str, typer.Option(help="admin, member or readonly (tenant users)")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    external_id: Annotated[
        str | None,
        typer.Option(help="The id a client app knows the user by (tenant users; X-On-Behalf-Of may name it)"),
    ] = None,
    url: LocalOnlyUrl = None,
) -> None:
    """Create a user. There is no default account: the first superadmin is made here.

    The password is read from standard input (--password-stdin), RAGAPI_PASSWORD, or a hidden prompt.
    Local only (the first superadmin cannot be made over the API).
    """
    local_only(url, "ragapi users create")
    import os
    import sys

    from ragapi.tenants.context import Role
    from ragapi.tenants.users import create_user

    if superadmin == (tenant is not None):
        raise typer.BadParameter("give either --superadmin or --tenant")
    checked_text(email, "email")
    try:
        chosen = Role.SUPERADMIN if superadmin else Role(role)
    except ValueError as exc:
        raise typer.BadParameter("role must be admin, member or readonly") from exc
    if chosen is Role.SUPERADMIN and not superadmin:
        raise typer.BadParameter("use --superadmin for a superadmin")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = os.environ.get("RAGAPI_PASSWORD") or typer.prompt(
            "Password", hide_input=True, confirmation_prompt=True
        )
    tenant_id = tenant_uuid(tenant) if tenant is not None else None
    settings = get_settings()
    user = run_local(lambda state: create_user(state.db, settings, tenant_id, email, password, chosen, external_id))
    made = {"id": str(user.id), "email": user.email, "role": user.role, "external_id": user.external_id}
    typer.echo(json.dumps(made))


@vectors_app.command("migrate")
def vectors_migrate(
    tenant: Annotated[str, typer.Argument(help="Tenant id")],
    to: Annotated[str, typer.Option("--to", help="Target backend: pgvector or pinecone")],
    knowledge_base: Annotated[
        str | None, typer.Option("--knowledge-base", "-k", help="Only this one (id or name); default: all of them")
    ] = None,
    url: LocalOnlyUrl = None,
) -> None:
    """Copy a tenant's vectors to another backend and switch its knowledge bases to it. Local only."""
    local_only(url, "ragapi vectors migrate")
    from ragapi.ingestion.vector_migration import migrate_vectors
    from ragapi.tenants.service import operator_context

    tenant_id = tenant_uuid(tenant)

    async def work(state: Any) -> int:
        if knowledge_base is not None:
            kb_ids = [await kb_id_of(state, tenant_id, knowledge_base)]
        else:
            operator = await operator_context(state.db, state.settings, tenant_id)
            kb_ids = [kb.id for kb in await state.knowledge_bases.visible(operator) if kb.status == "active"]
        return sum([await migrate_vectors(state.db, state.indexes, tenant_id, to, kb_id) for kb_id in kb_ids])

    moved = run_local(work)
    typer.echo(json.dumps({"tenant_id": str(tenant_id), "backend": to, "chunks_moved": moved}))


@app.command()
def reembed(
    tenant: OptionalTenantOption = None, knowledge_base: KnowledgeBaseOption = None, url: LocalOnlyUrl = None
) -> None:
    """Re-embed a knowledge base with the configured embedding model; it keeps answering with its old
    vectors until the new ones are complete, then switches in one commit. Local only."""
    from ragapi.ingestion.reembed import reembed as run_reembed

    local_only(url, "ragapi reembed")
    tenant_id = required_tenant(tenant)

    async def work(state: Any) -> Any:
        kb_id = await kb_id_of(state, tenant_id, knowledge_base)
        with progress_bar() as bar:
            task = bar.add_task("re-embedding", total=None)
            return await run_reembed(
                state.db,
                state.embeddings,
                tenant_id,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                kb_id=kb_id,
            )

    report = run_local(work)
    typer.echo(
        json.dumps(
            {
                "tenant_id": str(tenant_id),
                "previous_model": report.previous_model,
                "model": report.model,
                "dim": report.dim,
                "chunks": report.chunks,
            }
        )
    )


def _files(paths: list[Path]) -> Iterator[Path]:
    from ragapi.ingestion.parsers import EXTENSIONS

    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        elif path.is_file():
            yield path
        else:
            raise typer.BadParameter(f"{path} does not exist")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively)")],
    tenant: OptionalTenantOption = None,
    batch: Annotated[int, typer.Option(help="Files per batch (a request each with --url)")] = 16,
    knowledge_base: KnowledgeBaseOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A table of every file's outcome")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Every file's outcome as JSON")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Ingest files into a knowledge base with a progress bar, then one line of outcome (exit 1 when a file
    failed). Locally with --tenant, or through a running service with --url (progress from its job events)."""
    import time

    from ragapi.api.cli.output import FileOutcome, report
    from ragapi.ingestion.pipeline import IngestItem

    where = target(tenant, url, api_key, token)
    files = list(_files(paths))
    if not files:
        raise typer.BadParameter("no supported files found")
    if isinstance(where, Remote):
        remote.ingest(where, files, batch, knowledge_base, verbose, as_json)
        return
    tenant_id = where
    started = time.perf_counter()

    async def work(state: Any) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        kb_id = await kb_id_of(state, tenant_id, knowledge_base)
        with progress_bar() as progress:
            task = progress.add_task("ingesting", total=len(files))
            for start in range(0, len(files), batch):
                group = files[start : start + batch]
                items = [IngestItem(data=f.read_bytes(), filename=f.name) for f in group]
                report = await state.pipeline.run(tenant_id, items, kb_id=kb_id)
                results.extend(r.as_json() for r in report.results)
                progress.advance(task, len(group))
        return results

    results = run_local(work)
    outcomes = [FileOutcome.of(r) for r in results]
    where_to = f"knowledge base '{knowledge_base}'" if knowledge_base else "the default knowledge base"
    report(outcomes, time.perf_counter() - started, where_to, verbose=verbose, as_json=as_json)


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="The question")],
    tenant: OptionalTenantOption = None,
    top_k: Annotated[int | None, typer.Option(help="Sources to cite")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full response as JSON")] = False,
    knowledge_bases: Annotated[
        list[str] | None,
        typer.Option("--knowledge-base", "-k", help="Knowledge base to search (id or name); repeat for several"),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Ask a question over a tenant's documents: locally as the operator (--tenant; charged to the tenant's
    quota and logged like any other surface's question), or through a running service (--url)."""
    from ragapi.answering.question import AnswerRequest, Question, Surface
    from ragapi.tenants.service import operator_context

    where = target(tenant, url, api_key, token)
    checked_text(text, "the question")
    if isinstance(where, Remote):
        remote.query(where, text, top_k, knowledge_bases, as_json)
        return
    tenant_id = where

    async def work(state: Any) -> dict[str, Any]:
        asked = AnswerRequest(
            await operator_context(state.db, state.settings, tenant_id),
            Surface.CLI,
            Question.parse(text, top_k, None, True, state.settings, knowledge_bases or None),
        )
        answer = await state.answers.ask(asked)
        return dict(answer.model_dump(mode="json"))

    result = run_local(work)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(result["answer"])
    for c in result["citations"]:
        typer.echo(f"  [{c['n']}] {c['title']}  (document {c['document_id']})")


@app.command()
def chat(
    tenant: OptionalTenantOption = None,
    conversation: Annotated[
        str | None,
        typer.Option("--conversation", "-c", help="Go on with an earlier `ragapi chat` conversation (its id)"),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title of a new conversation")] = None,
    top_k: Annotated[int | None, typer.Option(help="Sources to cite")] = None,
    knowledge_bases: Annotated[
        list[str] | None,
        typer.Option("--knowledge-base", "-k", help="Bind a new conversation to a knowledge base; repeat"),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Talk with a tenant's documents: a question per line of standard input, each answered with its
    citations and the question that was searched (made standalone from the earlier ones). The conversation
    is kept like the API's (as the operator's, or with --url the key's); ends at the end of input or `/exit`."""
    import sys

    from ragapi.answering.conversations.limits import MAX_TITLE_CHARS
    from ragapi.answering.question import Question, Surface
    from ragapi.answering.service import final
    from ragapi.tenants.service import operator_context

    where = target(tenant, url, api_key, token)
    earlier = parse_uuid(conversation, "conversation") if conversation is not None else None
    if title is not None:
        title = checked_text(title, "title").strip() or None
        if title is not None and len(title) > MAX_TITLE_CHARS:
            raise typer.BadParameter(f"title is longer than {MAX_TITLE_CHARS} characters")
    if isinstance(where, Remote):
        remote.chat(where, conversation, title, top_k, knowledge_bases)
        return
    tenant_id = where

    async def work(state: Any) -> None:
        context = await operator_context(state.db, state.settings, tenant_id)
        if earlier is not None:
            conversation_id = (await state.conversations.read(context, earlier)).conversation.id  # the operator's
        else:
            conversation_id = (await state.conversations.create(context, title, knowledge_bases or [])).id
        typer.echo(f"conversation: {conversation_id}")
        prompt = sys.stdin.isatty()
        while True:
            if prompt:
                console.print("> ", end="")
            line = await asyncio.to_thread(sys.stdin.readline)
            text = line.strip()
            if not line or text == "/exit":
                return
            if not text:
                continue
            try:
                question = Question.parse(text, top_k, None, True, state.settings)
                turn = await state.conversations.ask(context, conversation_id, question, Surface.CLI)
                answer = await final(turn.events)
            except RagApiError as exc:  # this question only: the conversation goes on
                console.print(f"[red]error:[/red] {exc.detail}")
                continue
            typer.echo(answer.answer)
            for c in answer.citations:
                typer.echo(f"  [{c.n}] {c.title}  (document {c.document_id})")
            typer.echo(f"  searched: {turn.standalone.text}\n")

    run_local(work)


@app.command("eval")
def evaluate(
    folder: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")],
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Run an exported feedback set against this tenant's data")
    ] = None,
    min_ndcg: Annotated[float | None, typer.Option(help="Exit 1 when nDCG@10 is below this (a CI gate)")] = None,
    knowledge_base: KnowledgeBaseOption = None,
    url: LocalOnlyUrl = None,
) -> None:
    """Retrieval quality (nDCG@10, recall@100, MRR@10) and latency: a BEIR dataset in a throwaway tenant,
    or with --tenant a feedback export replayed against that tenant's knowledge base. Local only."""
    local_only(url, "ragapi eval")
    from ragapi.evaluation.beir import evaluate as run_eval
    from ragapi.evaluation.beir import evaluate_tenant

    async def work(state: Any) -> dict[str, Any]:
        if tenant is not None:
            kb = await knowledge_base_of(state, tenant_uuid(tenant), knowledge_base)
            return await evaluate_tenant(state.answers.pipeline.search, folder, tenant_uuid(tenant), split, kb)
        with progress_bar() as progress:
            task = progress.add_task("ingesting corpus", total=None)
            return await run_eval(
                state.db,
                state.pipeline,
                state.answers.pipeline.search,
                folder,
                split,
                progress=lambda n: progress.advance(task, n),
            )

    result = run_local(work)
    typer.echo(json.dumps(result, indent=2))
    if min_ndcg is not None and result["ndcg@10"] < min_ndcg:
        console.print(f"[red]nDCG@10 {result['ndcg@10']} is below the gate {min_ndcg}[/red]")
        raise typer.Exit(code=1)


@feedback_app.command("export")
def feedback_export(
    folder: Annotated[Path, typer.Argument(help="Where to write queries.jsonl and qrels/test.tsv")],
    tenant: OptionalTenantOption = None,
    knowledge_base: KnowledgeBaseOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Write the tenant's positively rated answers as a BEIR set for `ragapi eval --tenant` (with --url: an
    admin key's tenant, through GET /v1/feedback/export)."""
    where = target(tenant, url, api_key, token)
    if isinstance(where, Remote):
        remote.feedback_export(where, folder, knowledge_base)
        return
    if knowledge_base is not None:
        raise typer.BadParameter("--knowledge-base is for --url; the local export is the whole tenant's")
    from ragapi.analytics.feedback import export
    from ragapi.evaluation.beir import write_beir

    tenant_id = where
    exported = run_local(lambda state: export(state.db, tenant_id))
    write_beir(folder, exported)
    typer.echo(json.dumps({"queries": len(exported["queries"]), "qrels": len(exported["qrels"])}))


@kb_app.command("list")
def knowledge_bases_list(
    tenant: OptionalTenantOption = None, url: UrlOption = None, api_key: ApiKeyOption = None, token: TokenOption = None
) -> None:
    """The tenant's knowledge bases (with --url: those the credential may use), as JSON lines."""
    from ragapi.tenants.service import operator_context

    where = target(tenant, url, api_key, token)
    if isinstance(where, Remote):
        remote.knowledge_bases_list(where)
        return
    tenant_id = where

    async def work(state: Any) -> list[Any]:
        return list(await state.knowledge_bases.visible(await operator_context(state.db, state.settings, tenant_id)))

    for kb in run_local(work):
        typer.echo(json.dumps(_kb_json(kb)))


@kb_app.command("create")
def knowledge_bases_create(
    name: Annotated[str, typer.Argument(help="Unique among the tenant's")],
    tenant: OptionalTenantOption = None,
    description: Annotated[str, typer.Option(help="What it holds")] = "",
    settings: Annotated[str, typer.Option(help='Its own settings as JSON, e.g. {"top_k": 8}')] = "{}",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Create a knowledge base."""
    from ragapi.retrieval.knowledge_bases import KnowledgeBaseSettings
    from ragapi.tenants.service import operator_context

    where = target(tenant, url, api_key, token)
    try:
        own = KnowledgeBaseSettings.parse(json.loads(settings))
    except (ValueError, RagApiError) as exc:
        raise typer.BadParameter(f"--settings: {getattr(exc, 'detail', exc)}") from exc
    if isinstance(where, Remote):
        remote.knowledge_bases_create(where, name, description, own.stored())
        return
    tenant_id = where

    async def work(state: Any) -> Any:
        operator = await operator_context(state.db, state.settings, tenant_id)
        return await state.knowledge_bases.create(operator, checked_text(name, "name"), description, own)

    typer.echo(json.dumps(_kb_json(run_local(work))))


@kb_app.command("delete")
def knowledge_bases_delete(
    knowledge_base: Annotated[str, typer.Argument(help="Its id or name")],
    tenant: OptionalTenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a knowledge base with its documents, chunks, vectors and cached answers; waits until done
    (with --url: the service finishes it, its GET shows the progress)."""
    from ragapi.tenants.service import operator_context

    where = target(tenant, url, api_key, token)
    if isinstance(where, Remote):
        remote.knowledge_bases_delete(where, knowledge_base)
        return
    tenant_id = where

    async def work(state: Any) -> Any:
        kb = await state.knowledge_bases.delete(
            await operator_context(state.db, state.settings, tenant_id), knowledge_base
        )
        await state.knowledge_bases.drain()
        return kb

    kb = run_local(work)
    typer.echo(json.dumps({"id": str(kb.id), "name": kb.name, "deleted": True}))


def _kb_json(kb: Any) -> dict[str, Any]:
    return {
        "id": str(kb.id),
        "name": kb.name,
        "default": kb.is_default,
        "status": kb.status,
        "chunks": kb.chunk_count,
        "settings": kb.settings.stored(),
    }
