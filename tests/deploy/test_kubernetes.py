"""deploy/kubernetes: every overlay rendered by the real `kubectl kustomize` and every object
validated offline against the Kubernetes API's JSON schemas (kubernetes-validate, strict: an
unknown or misspelt field fails), then the wiring an operator relies on.

kubectl comes from Debian's kubernetes-client (1.20, kustomize v2: hence `bases:`) or any newer
kubectl; skipped when absent, failed instead when PGENRM_REQUIRE_KUBECTL=1 (scripts/test).
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import build_parser
from service.core.config import Settings
from tests.deploy._tools import required_tool

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = ("embedded", "vllm", "production-stack")
K8S_VERSION = "1.29.0"  # the oldest Kubernetes these manifests are checked against
# Custom resources the bundled schemas do not know; checked by hand below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
IMAGE_UID = 10001  # the Dockerfile's USER

# No type information ships with it.
kubernetes_validate: Any = importlib.import_module("kubernetes_validate")

Object = dict[str, Any]


def kubectl() -> str:
    return required_tool("kubectl", "kubernetes-client", "PGENRM_REQUIRE_KUBECTL")


def render(overlay: Path) -> list[Object]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def problems(objects: list[Object]) -> list[str]:
    """What the schemas (or, for custom kinds, the checks below) refuse, one line per object."""
    found = []
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if (obj.get("apiVersion"), obj.get("kind")) in CUSTOM_KINDS:
            found += [f"{name}: {p}" for p in service_monitor_problems(obj, objects)]
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            found.append(f"{name}: {e}")
    return found


def service_monitor_problems(monitor: Object, objects: list[Object]) -> list[str]:
    spec = monitor.get("spec", {})
    wanted = spec.get("selector", {}).get("matchLabels", {})
    services = [
        o
        for o in objects
        if o["kind"] == "Service" and wanted.items() <= o["metadata"].get("labels", {}).items()
    ]
    if len(services) != 1:
        return [f"selects {len(services)} Services"]
    ports = {p.get("name") for p in services[0]["spec"]["ports"]}
    endpoints = spec.get("endpoints", [])
    if not endpoints or any(e.get("port") not in ports for e in endpoints):
        return [f"endpoints {endpoints} name no port of {sorted(ports)}"]
    if spec.get("jobLabel") not in services[0]["metadata"]["labels"]:
        return ["jobLabel is not a label of the Service"]
    return []


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    name: str = request.param
    return name, render(KUBERNETES / "overlays" / name)


def one(objects: list[Object], kind: str, name: str) -> Object:
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind
        and (o["metadata"]["name"] == name or o["metadata"]["name"].startswith(name + "-"))
    ]
    return found


def config(objects: list[Object]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap", "pgenrm-config")["data"]
    return data


def test_every_object_of_every_overlay_is_valid(overlay: tuple[str, list[Object]]) -> None:
    _, objects = overlay
    assert len(objects) >= 15
    assert problems(objects) == []


def test_a_broken_manifest_fails_validation(tmp_path: Path) -> None:
    """The check above can fail: a misspelt field and a string replica count are refused."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    deployment = copy / "kubernetes" / "base" / "deployment.yaml"
    text = deployment.read_text()
    broken = text.replace("  replicas: 2\n", '  replicas: "two"\n', 1).replace(
        "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1
    )
    assert broken != text
    deployment.write_text(broken)
    found = problems(render(copy / "kubernetes" / "overlays" / "embedded"))
    assert len(found) == 1 and found[0].startswith("Deployment/pgenrm-gateway")
    assert "two" in found[0] or "readOnlyRootFileSystem" in found[0]


def test_the_gateway_runs_as_the_image_user_on_a_read_only_root(
    overlay: tuple[str, list[Object]],
) -> None:
    _, objects = overlay
    pod = one(objects, "Deployment", "pgenrm-gateway")["spec"]["template"]["spec"]
    assert (
        pod["securityContext"]["runAsUser"] == IMAGE_UID and pod["securityContext"]["runAsNonRoot"]
    )
    (gateway,) = pod["containers"]
    security = gateway["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= gateway["resources"]["requests"].keys()
    mounts = {m["mountPath"]: m for m in gateway["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # Every place the gateway writes is under a writable emptyDir: /tmp (where the server makes
    # the workers' PROMETHEUS_MULTIPROC_DIR) and the caches (ONNX exports, embeddings).
    settings = config(objects)
    env = {e["name"]: e["value"] for e in gateway["env"]}
    writes = ("/tmp", settings["PGENRM_EMBEDDER_ONNX_DIR"], env["XDG_CACHE_HOME"], env["TMPDIR"])
    for path in writes:
        mount = next(m for p, m in mounts.items() if Path(path).is_relative_to(p))
        assert "emptyDir" in volumes[mount["name"]] and not mount.get("readOnly"), path
    keys_file = Path(settings["PGENRM_API_KEYS_FILE"])
    assert "secret" in volumes[mounts[str(keys_file.parent)]["name"]]
    prototypes = mounts[settings["PGENRM_PROTOTYPES_DIR"]]
    assert prototypes["readOnly"] and "persistentVolumeClaim" in volumes[prototypes["name"]]
    # One worker process per requested core.
    assert settings["PGENRM_WORKERS"] == gateway["resources"]["requests"]["cpu"]


def test_the_settings_are_real_settings(overlay: tuple[str, list[Object]]) -> None:
    _, objects = overlay
    settings = config(objects)
    unknown = [
        k for k in settings if k.removeprefix("PGENRM_").lower() not in Settings.model_fields
    ]
    assert unknown == []
    assert settings["PGENRM_REDIS_URL"] == "redis://pgenrm-redis:6379/0"
    redis = one(objects, "Service", "pgenrm-redis")
    assert redis["spec"]["ports"][0]["port"] == 6379
    # Settings accepts them (the keys file is only read by the server).
    env = {k.removeprefix("PGENRM_").lower(): v for k, v in settings.items()}
    Settings.model_validate({**env, "api_keys_file": None})


def test_selectors_autoscaler_budget_and_monitoring_agree(
    overlay: tuple[str, list[Object]],
) -> None:
    _, objects = overlay
    deployment = one(objects, "Deployment", "pgenrm-gateway")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        obj = one(objects, kind, "pgenrm-gateway")
        selector = obj["spec"].get("selector") or obj["spec"]["podSelector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    target = one(objects, "HorizontalPodAutoscaler", "pgenrm-gateway")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "pgenrm-gateway")
    monitor = one(objects, "ServiceMonitor", "pgenrm-gateway")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    # The job label the dashboard and alerts expect (deploy/prometheus/prometheus.yml's job).
    service = one(objects, "Service", "pgenrm-gateway")
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "pgenrm-gateway"


def test_dashboard_and_rules_are_generated_from_their_one_source(
    overlay: tuple[str, list[Object]],
) -> None:
    _, objects = overlay
    dashboard = one(objects, "ConfigMap", "pgenrm-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    source = DEPLOY / "grafana" / "dashboards" / "pgenrm.json"
    assert json.loads(dashboard["data"]["pgenrm.json"]) == json.loads(source.read_text())
    rules = one(objects, "ConfigMap", "pgenrm-prometheus-rules")
    assert rules["data"]["alerts.yml"] == (DEPLOY / "prometheus" / "alerts.yml").read_text()


def test_the_learn_job_writes_where_the_gateways_read(overlay: tuple[str, list[Object]]) -> None:
    _, objects = overlay
    gateway_pod = one(objects, "Deployment", "pgenrm-gateway")["spec"]["template"]["spec"]
    claim = next(
        v["persistentVolumeClaim"]["claimName"]
        for v in gateway_pod["volumes"]
        if v["name"] == "prototypes"
    )
    assert "ReadWriteMany" in one(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"]
    job = one(objects, "Job", "pgenrm-prototypes-learn")["spec"]["template"]["spec"]
    cron = one(objects, "CronJob", "pgenrm-prototypes-relearn")["spec"]
    assert cron["suspend"] is True  # optional: turned on by the operator
    for pod in (job, cron["jobTemplate"]["spec"]["template"]["spec"]):
        (learn,) = pod["containers"]
        args = build_parser().parse_args(learn["args"][1:])  # the real CLI accepts them
        out = dict(zip(learn["args"], learn["args"][1:], strict=False))["--out"]
        assert out == config(objects)["PGENRM_PROTOTYPES_DIR"] and args is not None
        mount = next(m for m in learn["volumeMounts"] if m["mountPath"] == out)
        assert not mount.get("readOnly")
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["persistentVolumeClaim"]["claimName"] == claim
        assert learn["securityContext"]["readOnlyRootFilesystem"]


def test_the_vllm_overlay_runs_gpu_replicas_behind_the_gateways() -> None:
    objects = render(KUBERNETES / "overlays" / "vllm")
    vllm = one(objects, "Deployment", "pgenrm-vllm")["spec"]["template"]["spec"]
    (container,) = vllm["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert "--enable-prefix-caching" in container["args"]
    model = container["args"][container["args"].index("--served-model-name") + 1]
    settings = config(objects)
    assert settings["PGENRM_BACKEND"] == "openai" and settings["PGENRM_OPENAI_MODEL"] == model
    service = one(objects, "Service", "pgenrm-vllm")
    assert settings["PGENRM_OPENAI_URLS"] == (
        f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/v1"
    )


def test_production_stack_routes_sessions_on_the_header_the_gateways_send() -> None:
    objects = render(KUBERNETES / "overlays" / "production-stack")
    settings = config(objects)
    values_file = KUBERNETES / "overlays" / "production-stack" / "production-stack-values.yaml"
    values = yaml.safe_load(values_file.read_text())
    router = values["routerSpec"]
    assert router["routingLogic"] == "session"
    assert router["sessionKey"] == settings["PGENRM_OPENAI_AFFINITY_HEADER"]
    # Helm release "vllm": the router's Service is vllm-router-service.
    assert settings["PGENRM_OPENAI_URLS"] == "http://vllm-router-service/v1"
    (model,) = values["servingEngineSpec"]["modelSpec"]
    assert model["vllmConfig"]["enablePrefixCaching"] is True
    assert model["name"] == settings["PGENRM_OPENAI_MODEL"]
    assert "p-genrm-8b" in model["vllmConfig"]["extraArgs"]
