"""Upload stores: a local directory and an S3-compatible bucket. The bucket is served by `moto_server`,
a local implementation of the S3 REST API, through the real boto3 client (**wire level**)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragapi.api.state import AppState
from ragapi.ingestion import jobs
from ragapi.ingestion.uploads import LocalUploadStore, S3UploadStore, UploadStore, upload_key
from ragapi.ingestion.worker import IngestWorker
from tests.conftest import TenantHandle
from tests.ingestion.test_jobs import notes
from tests.services import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - the moto_server next to this interpreter
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3UploadStore:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    bucket = f"uploads-{uuid.uuid4().hex[:12]}"
    store = S3UploadStore(bucket, "ragapi/", s3_endpoint, "us-east-1")
    store.client.create_bucket(Bucket=bucket)
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> UploadStore:
    if request.param == "local":
        return LocalUploadStore(tmp_path / "uploads")
    s3: S3UploadStore = request.getfixturevalue("s3_store")
    return s3


def test_put_get_delete_and_delete_job(store: UploadStore) -> None:
    tenant, job, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for n in range(3):
        store.put(upload_key(tenant, job, n), f"file {n}".encode() * 1000)
    store.put(upload_key(tenant, other, 0), b"another job")
    assert store.get(upload_key(tenant, job, 1)) == b"file 1" * 1000
    store.delete(upload_key(tenant, job, 1))
    assert store.get(upload_key(tenant, job, 1)) is None
    store.delete(upload_key(tenant, job, 1))  # deleting twice is fine (a retried cleanup)
    store.delete_job(tenant, job)
    assert [store.get(upload_key(tenant, job, n)) for n in (0, 2)] == [None, None]
    assert store.get(upload_key(tenant, other, 0)) == b"another job"


def test_local_keys_cannot_leave_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        LocalUploadStore(tmp_path / "uploads").put("../../etc/owned", b"x")


async def test_a_job_through_a_bucket(paused: AppState, tenant: TenantHandle, s3_store: S3UploadStore) -> None:
    job = await jobs.submit(paused.db, s3_store, tenant.tenant_id, notes(2, "bucket"))
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket, Prefix="ragapi/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [f"ragapi/{tenant.tenant_id}/{job.id}/{n}" for n in (0, 1)]
    worker = IngestWorker(paused.db, paused.pipeline, s3_store, paused.settings)
    assert (await worker.run_batch(job.id)).claimed == 2
    async with paused.db.tenant_session(tenant.tenant_id) as session:
        assert [f.status for f in await jobs.files_of(session, job.id)] == ["created", "created"]
    assert s3_store.client.list_objects_v2(Bucket=s3_store.bucket, Prefix="ragapi/").get("Contents") is None
