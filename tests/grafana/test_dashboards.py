"""Every dashboard panel and alert rule, evaluated by a real Prometheus that scraped a real `ragapi serve`
(two uvicorn workers sharing PROMETHEUS_MULTIPROC_DIR) under some traffic: a query that names a metric
the service does not export, or returns nothing, fails here rather than on an operator's screen."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.services import ApiServer, PrometheusServer

GRAFANA = Path(__file__).parents[2] / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ALERTS = GRAFANA / "provisioning" / "alerting" / "ragapi.yaml"
METRIC = re.compile(r"\b(?:rag|http)_[a-z0-9_]+")
QUERIES = 8  # POST /v1/query requests the traffic sends
METRICS_TOKEN = "grafana-test-metrics-token-0123456789"


def panel_queries() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        out += [
            (f"{path.stem}: {panel['title']} [{target['refId']}]", target["expr"])
            for panel in dashboard["panels"]
            for target in panel["targets"]
        ]
    return out


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return [(rule["title"], rule["data"][0]["model"]["expr"]) for rule in rules]


def grafana_variables(expr: str) -> str:
    return expr.replace("$__rate_interval", "5m").replace("$tenant", ".+")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, str]]:
    workdir = tmp_path_factory.mktemp("prometheus")
    multiproc = workdir / "multiproc"
    multiproc.mkdir()
    server = ApiServer(
        workdir / "data",
        "--workers",
        "2",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        METRICS_BEARER_TOKEN=METRICS_TOKEN,  # tenants are told apart only behind a token
        IP_RATE_LIMIT_PER_MINUTE="3",
        METRICS_QUEUE_POLL_S="1",
        CHUNK_SIZE_TOKENS="120",
        CHUNK_OVERLAP_TOKENS="20",
    )
    server.start()
    prometheus = PrometheusServer(workdir, [server.url.removeprefix("http://")], bearer_token=METRICS_TOKEN)
    try:
        prometheus.start()
        tenant = json.loads(server.cli("tenants", "create", "grafana", "--json"))
        headers = {"X-API-Key": tenant["api_key"]}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for round_ in range(2):  # two rounds a few scrapes apart, so every rate() sees an increase
                documents = [
                    {"text": f"Round {round_} document {n} says gamma rays sterilise beans."} for n in range(3)
                ]
                ingested = client.post("/v1/ingest?wait=true", headers=headers, json={"documents": documents})
                assert ingested.status_code == 200, ingested.text
                for n in range(QUERIES // 2):
                    query = {"query": f"what sterilises beans {round_ * 2 + n % 2}?"}  # each asked twice: cache hits
                    assert client.post("/v1/query", headers=headers, json=query).status_code == 200
                for _ in range(4):  # beyond IP_RATE_LIMIT_PER_MINUTE: 429 from the login limit
                    client.post("/v1/auth/login", data={"username": "nobody@example.com", "password": "wrong-pass"})
                time.sleep(3)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the last round is scraped
            done = prometheus.query('sum(http_requests_total{handler="/v1/query"})')
            if done and float(done[0]["value"][1]) == QUERIES:
                break
            time.sleep(0.5)
        yield prometheus, tenant["tenant_id"]
    finally:
        prometheus.stop()
        server.stop()


@pytest.mark.parametrize(("where", "expr"), panel_queries() + alert_queries(), ids=lambda v: v if " " in v else "")
def test_every_dashboard_and_alert_query_has_data(scraped: tuple[PrometheusServer, str], where: str, expr: str) -> None:
    prometheus, _ = scraped
    unknown = set(METRIC.findall(expr)) - prometheus.metric_names()
    assert not unknown, f"{where} uses metrics the service does not export: {unknown}"
    result = prometheus.query(grafana_variables(expr))
    assert result, f"{where} returned no data: {expr}"


def test_counts_add_up_across_worker_processes(scraped: tuple[PrometheusServer, str]) -> None:
    """Two uvicorn workers answered; Prometheus sees every request once, whichever worker it scraped."""
    prometheus, tenant_id = scraped
    total = prometheus.query('sum(http_requests_total{handler="/v1/query",status="2xx"})')
    assert float(total[0]["value"][1]) == QUERIES
    by_cache = {
        r["metric"]["cache"]: float(r["value"][1])  # type: ignore[index]
        for r in prometheus.query(f'sum by (cache) (rag_queries_total{{tenant="{tenant_id}"}})')
    }
    assert by_cache.get("none", 0) + by_cache.get("exact", 0) + by_cache.get("semantic", 0) == QUERIES
    assert by_cache.get("exact", 0) + by_cache.get("semantic", 0) >= QUERIES / 2 - 1  # every repeat hit the cache
    limited = prometheus.query('sum(rag_rate_limit_rejections_total{limit="ip"})')
    assert float(limited[0]["value"][1]) >= 2
    documents = prometheus.query('sum(rag_ingest_documents_total{outcome="indexed"})')
    assert float(documents[0]["value"][1]) == 6


def test_tenant_variable_lists_the_tenant(scraped: tuple[PrometheusServer, str]) -> None:
    prometheus, tenant_id = scraped
    variable = json.loads((GRAFANA / "dashboards" / "tenant.json").read_text())["templating"]["list"][0]
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
    assert match is not None
    values = httpx.get(f"{prometheus.url}/api/v1/label/{match[2]}/values", params={"match[]": match[1]}).json()
    assert tenant_id in values["data"]


def test_alert_rules_are_well_formed() -> None:
    rules: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    assert {r["uid"] for r in rules} >= {"ragapi-p95-latency", "ragapi-error-rate", "ragapi-stuck-ingestion"}
    for rule in rules:
        refs = {d["refId"] for d in rule["data"]}
        assert rule["condition"] in refs and rule["data"][0]["datasourceUid"] == "prometheus"
