"""Where uploaded bytes wait for a worker: durable before the API answers 202, gone once indexed.

A directory (a shared volume when workers run on other machines), or an S3-compatible bucket. Local
writes go to a temporary name, are fsynced and renamed, so a crash never leaves a half-written upload
under its real key; an S3 PUT is atomic and durable when it returns.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Protocol

from ragapi.core.settings import Settings


def upload_key(tenant_id: uuid.UUID, job_id: uuid.UUID, ord_: int) -> str:
    return f"{tenant_id}/{job_id}/{ord_}"


class UploadStore(Protocol):
    """Blocking calls (workers and the API run them in threads)."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when they are gone (already indexed and removed, or lost)."""

    def delete(self, key: str) -> None: ...

    def delete_job(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None: ...


def build_upload_store(settings: Settings) -> UploadStore:
    if settings.upload_s3_bucket:
        return S3UploadStore(
            settings.upload_s3_bucket,
            settings.upload_s3_prefix,
            str(settings.upload_s3_endpoint_url) if settings.upload_s3_endpoint_url else None,
            settings.upload_s3_region,
        )
    return LocalUploadStore(settings.uploads_dir)


class LocalUploadStore:
    def __init__(self, root: Path) -> None:
        self.root = root

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
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_job(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        shutil.rmtree(self._path(f"{tenant_id}/{job_id}"), ignore_errors=True)


class S3UploadStore:
    """Any S3-compatible store (AWS S3, MinIO, Ceph, R2...). Credentials come from the standard AWS
    sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the pod's role)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, region: str | None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60),
        )

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(response["Body"].read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def delete_job(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}{tenant_id}/{job_id}/"
        )
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
