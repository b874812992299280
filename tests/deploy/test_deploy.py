"""Deployment files: docker-compose.yml (through the real `docker-compose config`), the
Dockerfile, Prometheus's scrape config and the Grafana provisioning (the dashboard and alerts:
test_dashboard.py).

No Docker engine needed. The compose checks need Debian's docker-compose binary: skipped when
it is absent, failed instead when PGENRM_REQUIRE_COMPOSE=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import build_parser
from service.core.config import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "pgenrm.json"
DOCKER_COMPOSE = Path("/usr/bin/docker-compose")

BASE_SERVICES = {"gateway", "redis", "prometheus", "grafana"}
GPU_SERVICES = BASE_SERVICES | {"vllm", "gateway-gpu"}
GATEWAYS = ("gateway", "gateway-gpu")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- docker-compose -------------------------------------------------------------------------


COMPOSE_KEYS = '{"keys": []}'


def compose_config(*args: str) -> dict[str, Any]:
    if not DOCKER_COMPOSE.exists():
        message = f"{DOCKER_COMPOSE} is absent (apt-get install -y docker-compose)"
        if os.environ.get("PGENRM_REQUIRE_COMPOSE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [str(DOCKER_COMPOSE), *args, "config"],
        cwd=REPO,
        # no PGENRM_* etc. leaking in; the keys as an operator's .env would give them
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGENRM_API_KEYS": COMPOSE_KEYS},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose {' '.join(args)} config:\n{result.stderr}"
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def active_services(config: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The services `up` starts: Compose v1's `config` lists every service, v2's only these."""
    return {
        name: service
        for name, service in config["services"].items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host path, container path) of a service's bind mounts, in v1 or v2 `config` form."""
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                yield volume["source"], volume["target"]
        elif volume.startswith(("/", ".")):
            source, target = volume.split(":")[:2]
            yield source, target


@pytest.mark.parametrize(
    ("args", "profiles", "expected"),
    [((), set(), BASE_SERVICES), (("--profile", "gpu"), {"gpu"}, GPU_SERVICES)],
    ids=["default", "gpu"],
)
def test_compose_config_services(
    args: tuple[str, ...], profiles: set[str], expected: set[str]
) -> None:
    services = active_services(compose_config(*args), profiles)
    assert set(services) == expected
    for name in expected & set(GATEWAYS):
        gateway = services[name]
        assert gateway["healthcheck"]["test"][0] == "CMD"
        assert any("/readyz" in part for part in gateway["healthcheck"]["test"])
        assert gateway["environment"]["PGENRM_REDIS_URL"] == "redis://redis:6379/0"
        assert gateway["environment"]["PGENRM_HOST"] == "0.0.0.0"
        assert gateway["environment"]["PGENRM_API_KEYS"] == COMPOSE_KEYS  # from .env
        assert Path(gateway["build"]["context"]) == REPO
        assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert Path(source).exists(), f"{name} mounts {source}, which does not exist"
    # Redis holds stored users too: persisted, and only TTL'd cache entries may be evicted.
    redis = services["redis"]
    command = [str(part) for part in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"
    assert any(str(v).endswith(":/data:rw") or str(v).endswith(":/data") for v in redis["volumes"])


def test_compose_refuses_gateways_without_keys() -> None:
    """Published on all interfaces, a gateway must not come up open: no keys, no config."""
    if not DOCKER_COMPOSE.exists():
        if os.environ.get("PGENRM_REQUIRE_COMPOSE") == "1":
            pytest.fail(f"{DOCKER_COMPOSE} is absent")
        pytest.skip(f"{DOCKER_COMPOSE} is absent")
    result = subprocess.run(
        [str(DOCKER_COMPOSE), "config"],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "PGENRM_API_KEYS" in result.stderr


def test_compose_gpu_profile_runs_vllm_behind_gateway_gpu() -> None:
    services = active_services(compose_config("--profile", "gpu"), {"gpu"})
    vllm = services["vllm"]
    assert "--enable-prefix-caching" in vllm["command"]
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    env = services["gateway-gpu"]["environment"]
    assert env["PGENRM_BACKEND"] == "openai"
    assert env["PGENRM_OPENAI_URLS"] == "http://vllm:8000/v1"
    model = vllm["command"][vllm["command"].index("--served-model-name") + 1]
    assert env["PGENRM_OPENAI_MODEL"] == model


def test_compose_grafana_mounts_match_provisioning() -> None:
    grafana = compose_config()["services"]["grafana"]
    mounts = {target: Path(source) for source, target in bind_mounts(grafana)}
    assert mounts["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "pgenrm.yml")
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/{DASHBOARD.name}"


def test_compose_gateway_variables_are_settings() -> None:
    """Every PGENRM_* the gateways get is a real setting (extra="forbid" would reject others)."""
    services = load_yaml(COMPOSE_FILE)["services"]
    for name in GATEWAYS:
        for key in services[name]["environment"]:
            assert key.startswith("PGENRM_")
            assert key.removeprefix("PGENRM_").lower() in Settings.model_fields, key


def test_readme_documents_every_compose_variable() -> None:
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert variables
    readme = (DEPLOY / "README.md").read_text()
    assert [v for v in sorted(variables) if f"`{v}`" not in readme] == []


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def test_dockerfile_structure() -> None:
    steps = dockerfile()
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) >= 2 and froms[-1] == "python:3.11-slim"
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1] not in {"root", "0"} and users[-1] == "10001"
    assert any(op == "COPY" and args.startswith("--from=") for op, args in final)
    health = [args for op, args in final if op == "HEALTHCHECK"]
    assert len(health) == 1
    assert "http://127.0.0.1:8000/readyz" in health[0] and "urllib" in health[0]
    assert ("EXPOSE", "8000") in final
    env = " ".join(args for op, args in final if op == "ENV")
    for setting in ("HF_HUB_OFFLINE=1", "TOKENIZERS_PARALLELISM=false", "PGENRM_HOST=0.0.0.0"):
        assert setting in env
    cmd = [args for op, args in final if op == "CMD"]
    assert [json.loads(c) for c in cmd] == [["pgenrm", "serve"]]
    build_parser().parse_args(["serve"])  # a real subcommand


def test_dockerfile_installs_the_hashed_lock_with_cpu_torch() -> None:
    """torch.lock from the CPU index, then server.lock (tests/deploy/test_locks.py checks both),
    hash-checked and nothing unlocked; then the project alone."""
    steps = dockerfile()
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in [
        args for op, args in steps if op == "ARG"
    ]
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    locked = [r for r in installs if " -r " in r]
    assert [m[1] for r in locked if (m := re.search(r" -r (\S+)", r))] == [
        "requirements/torch.lock",
        "requirements/server.lock",
    ]
    assert all("--require-hashes" in r and "--no-deps" in r for r in locked)
    assert "--extra-index-url" in locked[0] and "$TORCH_INDEX_URL" in locked[0]
    (project,) = [r for r in installs if " -r " not in r]
    assert re.search(r"pip install --no-deps \.(\s|$)", project) and "pip check" in project
    assert not any("[dev]" in r for r in installs)
    copied = {args.split()[0] for op, args in steps if op == "COPY"}
    assert {"requirements/torch.lock", "requirements/server.lock"} <= copied


def test_dockerignore_keeps_the_build_inputs() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "runs", "tests", "**/__pycache__"} <= ignored
    for op, args in dockerfile():
        if op == "COPY" and not args.startswith("--from="):
            *sources, _ = args.split()
            for source in sources:
                assert source not in ignored and (REPO / source).exists(), source


# --- Prometheus and Grafana -----------------------------------------------------------------


def test_prometheus_scrapes_gateways_and_vllm() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"pgenrm-gateway", "vllm"}
    targets = {
        name: {t for static in job["static_configs"] for t in static["targets"]}
        for name, job in jobs.items()
    }
    assert targets == {
        "pgenrm-gateway": {"gateway:8000", "gateway-gpu:8000"},
        "vllm": {"vllm:8000"},
    }
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())
    services = load_yaml(COMPOSE_FILE)["services"]
    assert {t.split(":")[0] for ts in targets.values() for t in ts} <= set(services)
