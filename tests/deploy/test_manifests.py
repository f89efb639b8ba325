"""Deployment files checked without a Docker engine or a cluster: kustomize renders every overlay, each
object validates against the Kubernetes schemas (kubernetes-validate, offline), the objects refer to one
another correctly, docker-compose.yml and the workflows validate against their published schemas, the
Dockerfile passes hadolint, and every command the image is started with is a real `ragapi` command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import check_jsonschema
import jsonschema
import pytest
import typer
import yaml
from kubernetes_validate import utils as kubernetes

from ragapi.api.cli import app

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir())
KUBERNETES_VERSIONS = ["1.30", "1.32", "1.34"]
CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor", "PodMonitor"}  # CRDs: checked by reference below
VENDOR_SCHEMAS = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"


def cli_commands() -> set[str]:
    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


@cache
def rendered(target: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for `kubectl kustomize`) is not installed"
    done = subprocess.run([kubectl, "kustomize", str(K8S / target)], capture_output=True, timeout=60)  # noqa: S603
    assert done.returncode == 0, done.stderr.decode()
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]


@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(target: str, version: str) -> None:
    docs = rendered(target)
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
        "ConfigMap", "Job", "ServiceAccount", "ScaledObject", "ServiceMonitor",
    }  # fmt: skip
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes.validate(doc, version, strict=True)  # raises with the path of the first error


def test_the_secret_example_validates() -> None:
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    kubernetes.validate(secret, KUBERNETES_VERSIONS[-1], strict=True)
    # Every key a pod is expected to have for a production start-up is there.
    assert {"DATABASE_URL", "JWT_SECRET", "REDIS_URL", "CELERY_BROKER_URL", "METRICS_BEARER_TOKEN"} <= set(
        secret["stringData"]
    )


@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_objects_refer_to_each_other(target: str) -> None:
    docs = rendered(target)
    deployments = by_kind(docs, "Deployment")
    configmaps = by_kind(docs, "ConfigMap")
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["metadata"]["name"]
    commands = cli_commands()

    for name, pod in workloads(docs):
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            assert container["args"][0] in commands, f"{where}: {container['args']} is not a ragapi command"
            hardened = container["securityContext"]
            assert hardened["readOnlyRootFilesystem"] and not hardened["allowPrivilegeEscalation"], where
            assert "/tmp" in {m["mountPath"] for m in container.get("volumeMounts", [])}, f"{where}: no writable /tmp"
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], where
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, where
                else:
                    assert source["secretRef"]["name"] == secret, where
            ports = {p["name"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in ports, f"{where}: {probe} names an unknown port"

    def selects(selector: dict[str, str], deployment: str) -> bool:
        labels = deployments[deployment]["spec"]["template"]["metadata"]["labels"]
        return all(labels.get(k) == v for k, v in selector.items())

    api, worker = deployments["ragapi-api"], deployments["ragapi-worker"]
    service = by_kind(docs, "Service")["ragapi-api"]
    assert selects(service["spec"]["selector"], "ragapi-api")
    api_ports = {p["name"]: p["containerPort"] for p in api["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in api_ports
    backend = by_kind(docs, "Ingress")["ragapi"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "ragapi-api" and backend["port"]["name"] == service["spec"]["ports"][0]["name"]
    assert by_kind(docs, "HorizontalPodAutoscaler")["ragapi-api"]["spec"]["scaleTargetRef"]["name"] == "ragapi-api"
    assert by_kind(docs, "ScaledObject")["ragapi-worker"]["spec"]["scaleTargetRef"]["name"] == "ragapi-worker"
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        assert sum(selects(pdb["spec"]["selector"]["matchLabels"], d) for d in deployments) == 1
    monitor = by_kind(docs, "ServiceMonitor")["ragapi-api"]["spec"]
    assert all(service["metadata"]["labels"].get(k) == v for k, v in monitor["selector"]["matchLabels"].items())
    assert monitor["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    pod_monitor = by_kind(docs, "PodMonitor")["ragapi-worker"]["spec"]
    assert selects(pod_monitor["selector"]["matchLabels"], "ragapi-worker")
    worker_ports = {p["name"] for p in worker["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert pod_monitor["podMetricsEndpoints"][0]["port"] in worker_ports
    # Network policies open exactly the ports the containers listen on.
    opened = {
        port["port"]
        for policy in by_kind(docs, "NetworkPolicy").values()
        for rule in policy["spec"].get("ingress", [])
        for port in rule["ports"]
    }
    assert opened == {api_ports["http"], 9101}

    # The drain fits inside the grace period: preStop + SHUTDOWN_TIMEOUT_S (+2 s for the last events).
    config = next(iter(configmaps.values()))["data"]
    api_pod = api["spec"]["template"]["spec"]
    pre_stop = int(api_pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pre_stop + float(config["SHUTDOWN_TIMEOUT_S"]) + 2 < api_pod["terminationGracePeriodSeconds"]
    assert config["MIGRATE_ON_START"] == "false"  # the Job migrates; pods wait for it in an init container


def test_overlays_change_what_they_say() -> None:
    production = rendered("overlays/production")
    assert {d["metadata"].get("namespace") for d in production} == {"ragapi"}
    assert by_kind(production, "HorizontalPodAutoscaler")["ragapi-api"]["spec"]["minReplicas"] == 3
    assert by_kind(production, "Ingress")["ragapi"]["spec"]["tls"][0]["secretName"] == "ragapi-tls"
    images = {c["image"] for _, pod in workloads(production) for c in containers(pod["spec"])}
    assert len(images) == 1 and re.fullmatch(r"[\w./-]+:[\w.-]+", images.pop())


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads((VENDOR_SCHEMAS / "compose-spec.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(compose())


def test_compose_runs_the_whole_platform() -> None:
    services = compose()["services"]
    assert set(services) >= {
        "api", "worker", "migrate", "nginx", "postgres", "redis", "rabbitmq", "prometheus", "grafana", "jaeger",
    }  # fmt: skip
    assert services["api"]["deploy"]["replicas"] == 2
    commands = cli_commands()
    for name in ("api", "worker", "migrate"):
        assert services[name]["command"][0] in commands, name
    # The API starts after the migration job and healthy stores; nginx after healthy replicas.
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for store in ("redis", "rabbitmq"):
        assert services["api"]["depends_on"][store]["condition"] == "service_healthy"
        assert "healthcheck" in services[store]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"
    # Every file mounted from the repository exists; data lives in named volumes.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose()["volumes"], f"{name}: {source} is not a named volume"
    # Every variable the file requires is documented in .env.example.
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    example = {line.split("=")[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert required and required <= example


def test_compose_prometheus_scrapes_with_the_metrics_token() -> None:
    """/metrics behind METRICS_BEARER_TOKEN: Prometheus expands no variables in its configuration, so the
    compose command writes the token into the file the API's scrape job reads it from."""
    prometheus = compose()["services"]["prometheus"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "ragapi")
    token_file = api_job["authorization"]["credentials_file"]
    assert api_job["authorization"]["type"] == "Bearer"
    assert prometheus["environment"]["METRICS_BEARER_TOKEN"] == "${METRICS_BEARER_TOKEN:-}"
    script = prometheus["command"][0]
    assert f'"$$METRICS_BEARER_TOKEN" > {token_file} &&' in script and script.split("&&")[1].split()[0] == "exec"
    promtool = shutil.which("promtool")
    assert promtool is not None
    checked = subprocess.run(  # noqa: S603 - Debian's promtool
        [promtool, "check", "config", "--syntax-only", str(ROOT / "deploy/prometheus/prometheus.yml")],
        capture_output=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, timeout=60)  # noqa: S603
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_image_runs_ragapi_commands_as_a_non_root_user() -> None:
    steps = dockerfile_instructions()
    final_stage = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    values = dict(final_stage)
    assert json.loads(values["ENTRYPOINT"]) == ["ragapi"]
    commands = cli_commands()
    assert json.loads(values["CMD"])[0] in commands
    healthcheck = json.loads(values["HEALTHCHECK"].split("CMD", 1)[1])
    assert healthcheck[0] == "ragapi" and healthcheck[1] in commands
    assert values["USER"].split(":")[0] not in ("0", "root")
    # What the build copies is in the repository and not excluded by .dockerignore.
    ignored = (ROOT / ".dockerignore").read_text()
    for op, arg in steps:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source}" in ignored, f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "healthcheck"])
def test_image_entrypoints_answer_help(command: str) -> None:
    """The console script the image runs (`ragapi`, from pyproject) knows each command it is given."""
    ragapi = Path(sys.executable).parent / "ragapi"
    done = subprocess.run([str(ragapi), command, "--help"], capture_output=True, timeout=60)  # noqa: S603
    assert done.returncode == 0, done.stderr.decode()


def test_workflows_validate_against_the_github_schema() -> None:
    schema = json.loads((VENDOR_SCHEMAS / "github-workflows.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    for path in workflows:
        workflow = yaml.safe_load(path.read_text())
        workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
        validator.validate(workflow)
        for name, job in workflow["jobs"].items():
            assert "timeout-minutes" in job, f"{path.name}: job {name} has no timeout"
        assert workflow["permissions"] == {"contents": "read"}, f"{path.name}: default permissions must be read-only"
