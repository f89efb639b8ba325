"""What the `ragapi` commands share: the command groups, the console, the options, and running work
in-process against the local database (`run`)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragapi.core.errors import RagApiError
from ragapi.core.settings import get_settings

app = typer.Typer(help="Enterprise RAG API", no_args_is_help=True, add_completion=False)
tenants_app = typer.Typer(help="Manage tenants", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
users_app = typer.Typer(help="Manage user accounts", no_args_is_help=True)
app.add_typer(users_app, name="users")
feedback_app = typer.Typer(help="Feedback as evaluation data", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")
vectors_app = typer.Typer(help="Manage where vectors live", no_args_is_help=True)
app.add_typer(vectors_app, name="vectors")
kb_app = typer.Typer(help="Manage a tenant's knowledge bases", no_args_is_help=True)
app.add_typer(kb_app, name="knowledge-bases")
console = Console(stderr=True)
T = TypeVar("T")

TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id (from 'ragapi tenants create')")]
KnowledgeBaseOption = Annotated[
    str | None, typer.Option("--knowledge-base", "-k", help="Knowledge base (id or name); default: the tenant's")
]


def run_local(work: Callable[[Any], Awaitable[T]]) -> T:
    """Start the service's components (no HTTP) and run `work(state)`."""
    from ragapi.api.state import AppState

    async def main() -> T:
        state = await AppState.start(get_settings())
        try:
            return await work(state)
        finally:
            await state.stop()

    try:
        return asyncio.run(main())
    except RagApiError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(code=1) from exc


def tenant_uuid(value: str) -> uuid.UUID:
    return parse_uuid(value, "tenant")


def parse_uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be a UUID") from exc


def checked_text(value: str, name: str) -> str:
    """A text argument held to the input policy (`core.inputs`), like every value the API takes."""
    from ragapi.core.inputs import text_problem

    reason = text_problem(value)
    if reason:
        raise typer.BadParameter(f"{name} {reason}")
    return value


async def knowledge_base_of(state: Any, tenant_id: uuid.UUID, ref: str | None) -> Any:
    """The knowledge base `ref` names in the tenant (None: its default, None back if it has none yet)."""
    from ragapi.tenants.service import operator_context

    return await state.knowledge_bases.resolve(await operator_context(state.db, state.settings, tenant_id), ref)


async def kb_id_of(state: Any, tenant_id: uuid.UUID, ref: str | None) -> uuid.UUID:
    kb = await knowledge_base_of(state, tenant_id, ref)
    return kb.id if kb is not None else tenant_id


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


# --- a running service instead of the local database ----------------------------------------------------

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="A running service (default: RAGAPI_URL): work through its API with a key or token, not --tenant",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="RAGAPI_API_KEY", help="API key for --url", show_default=False)
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="RAGAPI_TOKEN", help="A user's access token for --url, instead of a key"),
]
OptionalTenantOption = Annotated[
    str | None, typer.Option("--tenant", "-t", help="Tenant id, for the local database (not with --url)")
]
LocalOnlyUrl = Annotated[str | None, typer.Option("--url", hidden=True, help="Refused: a local-only command")]


@dataclass(frozen=True, slots=True)
class Remote:
    """A running service and the credential to use it with."""

    url: str
    api_key: str | None
    token: str | None


def target(tenant: str | None, url: str | None, api_key: str | None, token: str | None) -> uuid.UUID | Remote:
    """The local tenant (`--tenant`) or the service (`--url` or RAGAPI_URL, with a key or token) to work on."""
    if tenant is not None:
        if url is not None:
            raise typer.BadParameter("--tenant is for the local database; with --url the key names the tenant")
        return tenant_uuid(tenant)
    return remote(url, api_key, token)


def remote(url: str | None, api_key: str | None, token: str | None) -> Remote:
    url = url or os.environ.get("RAGAPI_URL") or None
    if url is None:
        raise typer.BadParameter(
            "give --tenant (the local database), or --url / RAGAPI_URL with --api-key / RAGAPI_API_KEY "
            "(a running service)"
        )
    if not (api_key or token):
        raise typer.BadParameter("--url needs --api-key (or RAGAPI_API_KEY), or --token")
    return Remote(url, api_key, token)


def required_tenant(tenant: str | None) -> uuid.UUID:
    if tenant is None:
        raise typer.BadParameter("--tenant is required", param_hint="'--tenant'")
    return tenant_uuid(tenant)


def local_only(url: str | None, what: str) -> None:
    """Refuse --url on a command that has no remote form."""
    if url is not None:
        console.print(
            f"[red]error:[/red] {what} works on the local database only: run it on the service's host, without --url"
        )
        raise typer.Exit(code=2)
