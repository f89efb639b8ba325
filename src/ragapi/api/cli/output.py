"""How an ingest is reported: one line by default (and a line per failed file), a table with --verbose,
JSON with --json; the same for the local database and a running service."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

ORDER = ("created", "replaced", "unchanged", "duplicate", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    filename: str | None
    status: str
    document_id: str | None
    chunks: int
    error: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> FileOutcome:
        error = row.get("error")
        reason = error.get("detail") if isinstance(error, Mapping) else error
        document_id = row.get("document_id")
        return cls(
            row.get("filename"),
            str(row["status"]),
            str(document_id) if document_id else None,
            int(row.get("chunks") or 0),
            str(reason) if reason else None,
        )


def summary(files: Sequence[FileOutcome], seconds: float, where: str) -> str:
    """e.g. `7 files into the default knowledge base in 3.2 s: 6 created, 1 failed; 21 chunks`."""
    counts = {status: sum(f.status == status for f in files) for status in ORDER}
    counts.update({f.status: sum(g.status == f.status for g in files) for f in files if f.status not in counts})
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    chunks = sum(f.chunks for f in files)
    noun = "file" if len(files) == 1 else "files"
    return f"{len(files)} {noun} into {where} in {seconds:.1f} s: {parts or 'nothing done'}; {chunks} chunks"


def report(
    files: Sequence[FileOutcome],
    seconds: float,
    where: str,
    *,
    verbose: bool,
    as_json: bool,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Print the outcome; exit 1 when a file failed."""
    failed = [f for f in files if f.status == "failed"]
    if as_json:
        counts: dict[str, int] = {}
        for f in files:
            counts[f.status] = counts.get(f.status, 0) + 1
        body = {
            "files": len(files),
            "counts": counts,
            "chunks": sum(f.chunks for f in files),
            "seconds": round(seconds, 3),
            **(extra or {}),
            "documents": [asdict(f) for f in files],
        }
        typer.echo(json.dumps(body, indent=2))
    elif verbose:
        table = Table(title=summary(files, seconds, where), title_justify="left")
        for column in ("file", "status", "chunks", "document", "error"):
            table.add_column(column, justify="right" if column == "chunks" else "left", overflow="fold")
        for f in files:
            table.add_row(f.filename or "", f.status, str(f.chunks), f.document_id or "", f.error or "")
        Console(width=200).print(table)
    else:
        typer.echo(summary(files, seconds, where))
        for f in failed:
            typer.echo(f"  failed: {f.filename}: {f.error}")
    if failed:
        raise typer.Exit(code=1)
