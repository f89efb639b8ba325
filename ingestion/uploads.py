"""Where uploaded bytes wait for a worker: durable before the API answers 202, gone once indexed.

A directory (a shared volume when workers run on other machines). Writes go to a temporary name,
are fsynced and renamed, so a crash never leaves a half-written upload under its real key.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


class UploadStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def key(tenant_id: uuid.UUID, job_id: uuid.UUID, ord_: int) -> str:
        return f"{tenant_id}/{job_id}/{ord_}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"upload key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when they are gone (already indexed and removed, or lost)."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_job(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        shutil.rmtree(self._path(f"{tenant_id}/{job_id}"), ignore_errors=True)
