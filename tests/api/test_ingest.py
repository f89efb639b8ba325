from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem
from tests.conftest import TenantHandle
from tests.documents import docx_bytes, pdf_bytes


async def test_multipart_upload_of_every_supported_type(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    files = [
        ("files", ("policy.pdf", pdf_bytes(["Expense reports are due by the 5th."]), "application/pdf")),
        ("files", ("guide.docx", docx_bytes("Guide", ["Use the VPN abroad."]), "application/octet-stream")),
        ("files", ("page.html", b"<h1>Wiki</h1><p>The wiki lives at /wiki.</p>", "text/html")),
        ("files", ("notes.md", b"# Notes\n\nStandup is at 10.", "text/markdown")),
        ("files", ("data.json", b'{"text": "Support hours are 8 to 6."}', "application/json")),
    ]
    response = await client.post(
        "/v1/ingest?wait=true",
        headers=tenant.headers,
        files=files,
        data={"metadata": '{"team": "ops"}', "external_ids": '["pol-1", null, null, null, "sup-1"]'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert [d["status"] for d in body["documents"]] == ["created"] * 5
    job = await client.get(f"/v1/ingest/jobs/{body['job_id']}", headers=tenant.headers)
    assert job.status_code == 200 and job.json()["status"] == "succeeded"
    doc = await client.get(f"/v1/documents/{body['documents'][0]['document_id']}", headers=tenant.headers)
    assert doc.json()["external_id"] == "pol-1" and doc.json()["metadata"] == {"team": "ops"}


async def test_partial_failure_is_207_with_reasons(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    files = [
        ("files", ("ok.txt", b"Fine content.", "text/plain")),
        ("files", ("bad.bin", b"\x00\x01", "application/octet-stream")),
    ]
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, files=files)
    assert response.status_code == 207
    docs = response.json()["documents"]
    assert docs[0]["status"] == "created"
    assert docs[1]["status"] == "failed" and docs[1]["error"]["status"] == 415


async def test_unsupported_type_is_415(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, files=[("files", ("x.exe", b"MZ", "application/x-msdownload"))]
    )
    body = assert_problem(response, 415)
    assert body["documents"][0]["filename"] == "x.exe"


async def test_empty_and_corrupt_files_are_422_with_reason(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    empty = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, files=[("files", ("e.txt", b"", "text/plain"))]
    )
    assert "empty" in assert_problem(empty, 422)["detail"]
    corrupt = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, files=[("files", ("c.pdf", b"%PDF-broken", "application/pdf"))]
    )
    assert "PDF" in assert_problem(corrupt, 422)["detail"]


async def test_oversized_upload_is_413_before_buffering(
    client: httpx.AsyncClient, tenant: TenantHandle, settings
) -> None:  # type: ignore[no-untyped-def]
    big = b"a" * (settings.max_upload_bytes + 1)
    response = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, files=[("files", ("big.txt", big, "text/plain"))]
    )
    assert "MAX_UPLOAD_BYTES" in assert_problem(response, 413)["detail"]

    async def chunked():  # type: ignore[no-untyped-def]
        for _ in range(settings.max_upload_bytes // 65536 + 2):
            yield b"b" * 65536

    streamed = await client.post(
        "/v1/ingest?wait=true", headers={**tenant.headers, "content-type": "application/json"}, content=chunked()
    )
    assert_problem(streamed, 413)


async def test_json_body_validation(client: httpx.AsyncClient, tenant: TenantHandle, settings) -> None:  # type: ignore[no-untyped-def]
    h = tenant.headers
    assert_problem(await client.post("/v1/ingest?wait=true", headers=h, json={"documents": []}), 422)
    assert_problem(await client.post("/v1/ingest?wait=true", headers=h, json={"documents": [{"text": ""}]}), 422)
    assert_problem(await client.post("/v1/ingest?wait=true", headers=h, json={"docs": [{"text": "x"}]}), 422)
    too_many = {"documents": [{"text": f"d{i}"} for i in range(settings.max_documents_per_request + 1)]}
    assert (
        "MAX_DOCUMENTS_PER_REQUEST"
        in assert_problem(await client.post("/v1/ingest?wait=true", headers=h, json=too_many), 422)["detail"]
    )
    bad_json = await client.post(
        "/v1/ingest?wait=true", headers={**h, "content-type": "application/json"}, content=b"{nope"
    )
    assert_problem(bad_json, 422)
    assert_problem(
        await client.post("/v1/ingest?wait=true", headers={**h, "content-type": "text/csv"}, content=b"a,b"), 415
    )


async def test_multipart_limits(client: httpx.AsyncClient, tenant: TenantHandle, settings) -> None:  # type: ignore[no-untyped-def]
    h = tenant.headers
    many = [
        ("files", (f"f{i}.txt", f"file {i}".encode(), "text/plain")) for i in range(settings.max_files_per_request + 1)
    ]
    assert (
        "MAX_FILES_PER_REQUEST"
        in assert_problem(await client.post("/v1/ingest?wait=true", headers=h, files=many), 422)["detail"]
    )
    one = [("files", ("f.txt", b"text", "text/plain"))]
    assert_problem(await client.post("/v1/ingest?wait=true", headers=h, files=one, data={"metadata": "[1]"}), 422)
    assert_problem(
        await client.post("/v1/ingest?wait=true", headers=h, files=one, data={"external_ids": '["a", "b"]'}), 422
    )
    assert_problem(
        await client.post(
            "/v1/ingest?wait=true", headers=h, data={"metadata": "{}"}, files=[("other", ("f.txt", b"x", "text/plain"))]
        ),
        422,
    )


async def test_query_only_key_cannot_ingest(client: httpx.AsyncClient, db, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    from ragapi.tenants.api_keys import create_api_key
    from ragapi.tenants.context import Scope

    key = (await create_api_key(db, tenant.tenant_id, "reader", [Scope.QUERY])).plaintext
    response = await client.post(
        "/v1/ingest?wait=true", headers={"X-API-Key": key}, json={"documents": [{"text": "x"}]}
    )
    assert "ingest" in assert_problem(response, 403)["detail"]


async def test_a_zip_bomb_fails_alone(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    from tests.documents import docx_bomb

    files = [
        ("files", ("bomb.docx", docx_bomb(200 << 20), "application/octet-stream")),
        ("files", ("ok.txt", b"Fine.", "text/plain")),
    ]
    response = await client.post("/v1/ingest?wait=true", headers=tenant.headers, files=files)
    assert response.status_code == 207
    bomb, ok = response.json()["documents"]
    assert bomb["status"] == "failed" and bomb["error"]["status"] == 422 and "DOCX" in bomb["error"]["detail"]
    assert ok["status"] == "created"


async def test_documents_without_a_title_are_cited_by_their_file_name(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    # ReportLab, like many PDF tools, writes the title "untitled" when none was set
    pdf = pdf_bytes(["Expense reports are due by the 5th of each month."])
    upload = await client.post(
        "/v1/ingest?wait=true", headers=tenant.headers, files=[("files", ("q3-expenses.pdf", pdf, "application/pdf"))]
    )
    assert upload.status_code == 200, upload.text
    text = {"text": "Travel policy\nBook trains for trips under 4 hours."}  # no file, no title: its first line
    await client.post("/v1/ingest?wait=true", headers=tenant.headers, json={"documents": [text]})
    listed = await client.get("/v1/documents", headers=tenant.headers)
    assert sorted(d["title"] for d in listed.json()["items"]) == ["Travel policy", "q3-expenses"]
    answer = await client.post("/v1/query", headers=tenant.headers, json={"query": "When are expense reports due?"})
    assert answer.json()["citations"][0]["title"] == "q3-expenses"
