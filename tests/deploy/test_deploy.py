"""deploy/ checked without pulling an image: schemas, secrets, probes, and that the pieces agree.

Compose goes through `docker compose config` (the v2 plugin, or Debian's `docker-compose` v1 that
`.ci/run` installs) and through the Compose Specification's JSON schema always; manifests through
the Kubernetes API schemas that kubernetes-validate ships (offline), and `kubectl kustomize` where
kubectl is installed.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from engine.settings import load_settings
from tests.missing import missing

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.37.0"
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY", re.IGNORECASE)
# Fake values for `docker compose config`; nothing is started.
COMPOSE_ENV = {
    "TELEGRAM_BOT_TOKEN": "123456:test",
    "TELEGRAM_WEBHOOK_SECRET": "test",
    "POSTGRES_PASSWORD": "test",
    "BOT_DOMAIN": "bot.example.com",
}

Doc = dict[str, Any]


def compose() -> Doc:
    data: Doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def manifests() -> list[tuple[str, Doc]]:
    """Every Kubernetes object in deploy/k8s, with its file name."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def workload(kind: str, name: str) -> Doc:
    (doc,) = [d for _, d in manifests() if (d["kind"], d["metadata"]["name"]) == (kind, name)]
    return doc


def pod_specs() -> list[tuple[str, Doc]]:
    """The pod template of every workload, by kind/name."""
    specs = []
    for _, doc in manifests():
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "StatefulSet"):
            specs.append((name, doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "CronJob":
            specs.append((name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return specs


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose(), schema)


def compose_command() -> list[str] | None:
    """`docker compose` where the v2 plugin is installed, else `docker-compose` (v1), else None."""
    docker = shutil.which("docker")
    if docker is not None:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if plugin.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return None if legacy is None else [legacy]


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        missing(
            "neither `docker compose` nor `docker-compose` is installed"
            " (the schema test above checks the file)",
            "apt-get install docker-compose",
            ci=".ci/run installs docker-compose",
        )
    compose_file = DEPLOY / "compose.yaml"
    if Path(command[0]).name == "docker-compose":
        # v1 predates the top-level `name` (the schema test checks it): it goes in as -p, and
        # v1 checks everything else in a copy without that one line, paths resolved in deploy/.
        name = compose()["name"]
        text = compose_file.read_text()
        without_name = text.replace(f"\nname: {name}\n", "\n", 1)
        assert without_name.count("\n") == text.count("\n") - 1
        compose_file = tmp_path / "compose.yaml"
        compose_file.write_text(without_name)
        command += ["-p", name, "--project-directory", str(DEPLOY)]
    result = subprocess.run(
        [*command, "-f", str(compose_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, **COMPOSE_ENV},
    )
    assert result.returncode == 0, result.stderr


def test_compose_takes_every_secret_from_the_environment() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (name, key, value)
    for name in ("receiver", "worker"):
        env = services[name]["environment"]
        assert {"TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "PGPASSWORD"} <= set(env)


def test_compose_runs_each_bot_role_and_checks_its_health() -> None:
    services = compose()["services"]
    assert services["receiver"]["command"][:2] == ["--role", "receiver"]
    assert services["worker"]["command"][:2] == ["--role", "worker"]
    for name, service in services.items():
        assert "healthcheck" in service or name == "caddy", f"{name} has no health check"
    readiness = services["worker"]["healthcheck"]["test"]
    assert any("/readyz" in part for part in readiness)


def test_the_bot_accepts_the_roles_the_deploy_files_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "receiver" in result.stdout and "worker" in result.stdout


def test_the_deploy_config_loads_and_names_each_vllm_replica() -> None:
    settings = load_settings(DEPLOY / "supportbot.toml")
    assert settings.generator.backend == "openai"
    replicas = {n for n in compose()["services"] if n.startswith("vllm-")}
    assert {url.split("//")[1].split(":")[0] for url in settings.generator.base_urls} == replicas
    assert settings.metrics.port and settings.metrics.host == "0.0.0.0"
    # A user and no password in the URL: asyncpg takes PGPASSWORD from the environment.
    user = settings.log.url.split("//")[1].split("@")[0]
    assert user and ":" not in user
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"receiver:{settings.bot.listen_port}" in caddy
    assert settings.bot.webhook_path in caddy


def test_the_configmap_config_loads_and_names_each_replica_of_the_statefulset(
    tmp_path: Path,
) -> None:
    (config,) = [doc for _, doc in manifests() if doc["kind"] == "ConfigMap"]
    path = tmp_path / "supportbot.toml"
    path.write_text(config["data"]["supportbot.toml"])
    settings = load_settings(path)
    vllm = workload("StatefulSet", "vllm")
    service = vllm["spec"]["serviceName"]
    expected = [f"http://vllm-{i}.{service}:8000" for i in range(vllm["spec"]["replicas"])]
    assert list(settings.generator.base_urls) == expected


@pytest.mark.parametrize("name_and_doc", manifests(), ids=lambda nd: f"{nd[0]}:{nd[1]['kind']}")
def test_each_manifest_follows_the_kubernetes_api_schema(name_and_doc: tuple[str, Doc]) -> None:
    _, doc = name_and_doc
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_kubectl_renders_the_kustomization() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing(
            "kubectl is not installed (the schema tests above check each manifest)",
            "apt-get install kubernetes-client",
            ci=".ci/run installs kubernetes-client",
        )
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert len(rendered) == len(manifests())
    namespaced = [doc for doc in rendered if doc["kind"] != "Namespace"]
    assert all(doc["metadata"]["namespace"] == "supportbot" for doc in namespaced)


def test_every_long_running_container_has_probes_and_resources() -> None:
    for name, spec in pod_specs():
        for container in spec["containers"]:
            where = f"{name} container {container['name']}"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where
            if not name.startswith("CronJob/"):
                assert "livenessProbe" in container and "readinessProbe" in container, where


def test_the_bot_pods_are_ready_only_when_readyz_says_so() -> None:
    for name in ("receiver", "worker"):
        spec = workload("Deployment", name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert spec["securityContext"]["runAsNonRoot"] is True


def test_no_manifest_carries_a_secret_value() -> None:
    assert not [doc for _, doc in manifests() if doc["kind"] == "Secret"]
    for name, spec in pod_specs():
        for container in spec["containers"]:
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]):
                    assert "value" not in variable, (name, variable["name"])
                    assert variable["valueFrom"]["secretKeyRef"]["name"] == "supportbot"


def test_the_vllm_replicas_load_adapters_at_run_time_from_the_shared_volume() -> None:
    (container,) = workload("StatefulSet", "vllm")["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "--enable-lora" in container["args"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    worker = workload("Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]
    worker_mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    # The same path on both sides: the adapter folder a worker names is the one vLLM reads.
    assert "/var/lib/supportbot/var" in mounts & worker_mounts
    services = compose()["services"]
    for name in ("vllm-0", "vllm-1"):
        assert services[name]["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
        assert "state:/var/lib/supportbot/var:ro" in services[name]["volumes"]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_the_images_run_as_a_user_and_bake_in_no_secret(dockerfile: str) -> None:
    lines = (DEPLOY / dockerfile).read_text().splitlines()
    instructions = [line.split(None, 1) for line in lines if line and line[0] not in "# "]
    users = [rest for word, *rest in instructions if word == "USER"]
    assert users and users[-1] != ["root"]
    for word, *rest in instructions:
        if word in ("ENV", "ARG"):
            assert not SECRET_NAME.search(" ".join(rest)), rest
    entry = [rest for word, *rest in instructions if word == "ENTRYPOINT"]
    assert entry and '"bot"' in entry[-1][0]


def test_the_deploy_toml_has_no_secret_keys() -> None:
    data = tomllib.loads((DEPLOY / "supportbot.toml").read_text())
    keys = [key for section in data.values() for key in section]
    assert keys and not [key for key in keys if SECRET_NAME.search(key)]
