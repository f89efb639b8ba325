"""`make demo`: a tenant of its own, the public-domain documents of examples/demo in its default knowledge
base, and a first question answered with its citations; then where to go next.

In-process against the same database as `ragapi serve`, running or not, as the CLI works. Run again, it
reuses its tenant (kept in DATA_DIR/demo.json, readable by its owner only) and finds the documents
unchanged (each file's name is its external id).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ragapi.answering.answer import Answer
from ragapi.answering.question import AnswerRequest, Question, Surface
from ragapi.api.state import AppState
from ragapi.core.errors import NotFound
from ragapi.core.settings import Settings, get_settings
from ragapi.ingestion.pipeline import IngestItem
from ragapi.tenants.service import create_tenant, operator_context

QUESTION = "What did our fathers bring forth on this continent?"
DEMO_FILE = "demo.json"


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: uuid.UUID
    api_key: str


@dataclass(frozen=True)
class DemoRun:
    tenant: DemoTenant
    statuses: dict[str, str]  # file name -> created, unchanged, ... (ingestion's outcome)
    answer: Answer


def documents_in(folder: Path) -> list[tuple[str, bytes]]:
    files = sorted(p for p in folder.glob("*.txt") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no .txt documents in {folder}")
    return [(f.name, f.read_bytes()) for f in files]


def saved_tenant(data_dir: Path) -> DemoTenant | None:
    saved = data_dir / DEMO_FILE
    if not saved.exists():
        return None
    known = json.loads(saved.read_text())
    return DemoTenant(uuid.UUID(known["tenant_id"]), known["api_key"])


def save_tenant(data_dir: Path, tenant: DemoTenant) -> None:
    saved = data_dir / DEMO_FILE
    saved.touch(mode=0o600)
    saved.write_text(json.dumps({"tenant_id": str(tenant.tenant_id), "api_key": tenant.api_key}))


async def demo_tenant(state: AppState) -> DemoTenant:
    """The tenant an earlier run made, or a new one (its key saved for the next run)."""
    known = saved_tenant(state.settings.data_dir)
    if known is not None:
        try:
            await operator_context(state.db, state.settings, known.tenant_id)
            return known
        except NotFound:
            pass  # the database was reset since: make another
    created = await create_tenant(state.db, "Demo")
    tenant = DemoTenant(created.tenant_id, created.api_key)
    save_tenant(state.settings.data_dir, tenant)
    return tenant


async def run(settings: Settings, documents: list[tuple[str, bytes]], question: str = QUESTION) -> DemoRun:
    state = await AppState.start(settings)
    try:
        tenant = await demo_tenant(state)
        context = await operator_context(state.db, state.settings, tenant.tenant_id)
        default = await state.knowledge_bases.resolve(context, None)
        items = [
            IngestItem(data=data, filename=name, title=data.decode().split("\n", 1)[0], external_id=name)
            for name, data in documents
        ]
        kb_id = default.id if default is not None else tenant.tenant_id  # as `ragapi ingest` does
        report = await state.pipeline.run(tenant.tenant_id, items, kb_id=kb_id)
        statuses = {documents[r.index][0]: r.as_json()["status"] for r in report.results}
        asked = Question.parse(question, None, None, True, state.settings)
        answer = await state.answers.ask(AnswerRequest(context, Surface.CLI, asked))
        return DemoRun(tenant, statuses, answer)
    finally:
        await state.stop()


def report(done: DemoRun, question: str, url: str, out: TextIO) -> None:
    lines = ["Loaded the demo documents into the tenant 'Demo':"]
    lines += [f"  {name}: {status}" for name, status in done.statuses.items()]
    lines += ["", f"Q: {question}", f"A: {done.answer.answer}", ""]
    cited = [c for c in done.answer.citations if f"[{c.n}]" in done.answer.answer] or done.answer.citations[:1]
    lines += [f"  [{c.n}] {c.title}: {' '.join(c.snippet.split())[:90]}..." for c in cited]
    lines += [
        "",
        f"The demo tenant's admin API key (kept in {DEMO_FILE} in DATA_DIR): {done.tenant.api_key}",
        "Next, with `make run` serving:",
        f"  the console:     {url}/console",
        f"  the playground:  {url}/v1/rag/playground/  (sign in with the key above)",
        f"  the API docs:    {url}/docs  (Authorize with the key above)",
        f"  curl -s {url}/v1/query -H \"X-API-Key: {done.tenant.api_key}\" -H 'content-type: application/json' \\",
        '    -d \'{"query": "What rights does the First Amendment protect?"}\'',
    ]
    out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    from ragapi.api.welcome import base_url

    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("documents", type=Path, nargs="?", default=Path("examples/demo"))
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args(argv)
    settings = get_settings()
    done = asyncio.run(run(settings, documents_in(args.documents), args.question))
    report(done, args.question, base_url(settings), sys.stdout)


if __name__ == "__main__":
    main()
