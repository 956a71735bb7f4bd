"""deploy/kubernetes renders offline (`kubectl kustomize`), its standard kinds pass the Kubernetes schemas, and it
matches the code: every stage deployed and scaled on the queue the topology declares, every probe on a route the
process serves on that port, secrets by reference only, non-root read-only containers that outlive their drain;
and the processes run as the manifests and compose say: the rendered env, a read-only root file system and working
directory, one master key and one Redis for the fleet."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from cryptography.fernet import Fernet
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.live.v20180801 import live_client, models

from framewatch.settings import Settings
from framewatch.settings.blobs import BlobSettings
from framewatch.wiring import ingest_listeners, worker_listeners
from tests.conftest import postgres_database
from tests.helpers import AMQP_URL, REDIS_URL, free_port, ready, wait_until
from workers import stages

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
KUBERNETES = "1.30.0"
STANDARD_GROUPS = ("v1", "apps/v1", "policy/v1", "autoscaling/v2")


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: .ci/run installs it (Debian's kubernetes-client)"
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(DEPLOY / "base")


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def test_both_render_and_the_standard_kinds_pass_the_schemas(base: list[dict[str, Any]]) -> None:
    overlay = render(DEPLOY / "overlays" / "example")
    for doc in (*base, *overlay):
        if doc["apiVersion"] in STANDARD_GROUPS:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    assert {doc["metadata"].get("namespace") for doc in overlay} == {"live-platform"}


def test_every_stage_is_deployed_and_scaled_on_the_queue_it_consumes(base: list[dict[str, Any]]) -> None:
    settings = of_kind(base, "ConfigMap")["framewatch-settings"]["data"]
    topology = stages.topology(settings["FRAMEWATCH_NAMESPACE"])
    deployments, scaled = of_kind(base, "Deployment"), of_kind(base, "ScaledObject")
    for stage in stages.NAMES:
        [container] = deployments[f"framewatch-{stage}"]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["worker", stage]
        scaler = scaled[f"framewatch-{stage}"]
        assert scaler["spec"]["scaleTargetRef"]["name"] == f"framewatch-{stage}"
        [trigger] = scaler["spec"]["triggers"]
        assert (trigger["type"], trigger["metadata"]["queueName"]) == ("rabbitmq", topology.queue(stage))
        assert trigger["authenticationRef"]["name"] in of_kind(base, "TriggerAuthentication")
    assert set(scaled) == {f"framewatch-{stage}" for stage in stages.NAMES}
    hpa = of_kind(base, "HorizontalPodAutoscaler")["framewatch-ingest"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "framewatch-ingest" and hpa["spec"]["minReplicas"] >= 2


def routes(app: Any) -> set[str]:
    return {resource.canonical for resource in app.router.resources()}


def test_probes_and_services_reach_what_the_processes_serve(base: list[dict[str, Any]]) -> None:
    data = of_kind(base, "ConfigMap")["framewatch-settings"]["data"]
    settings = Settings(
        _env_file=None,
        database_url="sqlite:///:memory:",
        blobs=BlobSettings(url="s3://bucket/prefix"),
        master_key="x" * 43 + "=",
    )
    callbacks, admin = (listener.app for listener in ingest_listeners(settings))
    served = {
        int(data["FRAMEWATCH_PORT"]): routes(callbacks),
        int(data["FRAMEWATCH_ADMIN_PORT"]): routes(admin),
        int(data["FRAMEWATCH_WORKER_PORT"]): routes(worker_listeners(settings, ["fetch"])[0].app),
    }
    assert data["FRAMEWATCH_HOST"] == data["FRAMEWATCH_ADMIN_HOST"] == "0.0.0.0"  # the pod's address
    for name, deployment in of_kind(base, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in served[ports[get["port"]]], f"{name}: {probe} {get}"
        assert pod["terminationGracePeriodSeconds"] > int(data["FRAMEWATCH_SHUTDOWN_TIMEOUT"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        for variable in container["env"]:  # secrets by reference, never literal
            assert "valueFrom" in variable or not any(s in variable["name"] for s in ("URL", "KEY", "SECRET"))
    ingest_ports = {p["name"]: p["containerPort"] for p in of_kind(base, "Deployment")["framewatch-ingest"]["spec"]
                    ["template"]["spec"]["containers"][0]["ports"]}  # fmt: skip
    services = of_kind(base, "Service")
    assert ingest_ports[services["framewatch-callbacks"]["spec"]["ports"][0]["targetPort"]] == 8080
    admin_service = services["framewatch-admin"]["spec"]
    assert admin_service["type"] == "ClusterIP" and ingest_ports[admin_service["ports"][0]["targetPort"]] == 8090
    assert of_kind(base, "PodDisruptionBudget")["framewatch-ingest"]["spec"]["minAvailable"] >= 1
    assert not of_kind(base, "Secret")  # made by the operator, never in the tree


def manifest_env(base: list[dict[str, Any]], deployment: str, secrets: dict[str, str]) -> dict[str, str]:
    """A container's environment as Kubernetes would give it: the ConfigMap, its literal values, and each secret
    reference resolved from `secrets` (which must hold every key the manifest names)."""
    env = dict(of_kind(base, "ConfigMap")["framewatch-settings"]["data"])
    [container] = of_kind(base, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"]
    for variable in container.get("env", []):
        if "valueFrom" in variable:
            env[variable["name"]] = secrets[variable["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[variable["name"]] = variable["value"]
    return env


def read_only(argv: list[str]) -> list[str]:
    """The command in a mount namespace of its own whose root file system (the working directory and the code
    included) is read-only, with an empty writable /tmp, as the manifests' readOnlyRootFilesystem and emptyDir."""
    script = (
        "mount --make-rprivate / && mount --rbind / / && mount -o remount,bind,ro / && mount -t tmpfs tmpfs /tmp"
        f' && cd {ROOT} && exec "$@"'
    )
    return ["unshare", "--mount", "sh", "-c", script, "read-only", *argv]


ROOT = DEPLOY.parent.parent


async def test_the_fleet_runs_as_the_manifests_say_read_only_one_master_key_one_redis(
    base: list[dict[str, Any]], s3_server: str, namespace: str, amqp: None
) -> None:
    python = [sys.executable, "-m", "framewatch"]
    async with postgres_database() as database:
        secrets = {
            "amqp-url": AMQP_URL,
            "database-url": database,
            "master-key": Fernet.generate_key().decode(),
            "redis-url": REDIS_URL,
            "aws-access-key-id": "test-key-id",
            "aws-secret-access-key": "test-secret",
        }
        here = {  # this machine instead of the cluster's: loopback, ports of its own, the test's namespace and S3
            "FRAMEWATCH_HOST": "127.0.0.1",
            "FRAMEWATCH_ADMIN_HOST": "127.0.0.1",
            "FRAMEWATCH_NAMESPACE": namespace,
            "FRAMEWATCH_S3_ENDPOINT_URL": s3_server,
        }
        processes: list[subprocess.Popen[bytes]] = []

        def start(deployment: str, argv: list[str], ports: dict[str, int]) -> dict[str, str]:
            env = {**manifest_env(base, deployment, secrets), **here, **{k: str(v) for k, v in ports.items()}}
            processes.append(
                subprocess.Popen(read_only([*python, *argv]), env={**os.environ, **env}, stderr=subprocess.PIPE)
            )
            return env

        try:
            port, admin, worker = free_port(), free_port(), free_port()
            [ingest_args] = [c["args"] for c in of_kind(base, "Deployment")["framewatch-ingest"]["spec"]["template"]
                             ["spec"]["containers"]]  # fmt: skip
            env = start("framewatch-ingest", ingest_args, {"FRAMEWATCH_PORT": port, "FRAMEWATCH_ADMIN_PORT": admin})
            assert env["FRAMEWATCH_MASTER_KEY"] == secrets["master-key"] and env["FRAMEWATCH_REDIS_URL"] == REDIS_URL
            await wait_until(lambda: ready(f"http://127.0.0.1:{port}"), timeout=40)
            start("framewatch-streams", ["worker", "streams"], {"FRAMEWATCH_WORKER_PORT": worker})
            await wait_until(lambda: ready(f"http://127.0.0.1:{worker}"), timeout=40)
            # Another process of the fleet (the CLI, read-only too) makes a key pair; the ingress opens its secret.
            cli_env = {**os.environ, **manifest_env(base, "framewatch-ingest", secrets), **here}
            for argv in (["accounts", "create", "acme"], ["accounts", "keys", "create", "acme"]):
                made = await asyncio.to_thread(
                    subprocess.run, read_only([*python, *argv]), env=cli_env, capture_output=True, text=True, timeout=60
                )
                assert made.returncode == 0, made.stderr
            key_id, secret = made.stdout.strip().splitlines()[-1].split(" ")
            http = HttpProfile(protocol="http", endpoint=f"127.0.0.1:{admin}")
            client = live_client.LiveClient(
                credential.Credential(key_id, secret), "ap-guangzhou", ClientProfile(httpProfile=http)
            )
            answer = await asyncio.to_thread(
                client.DescribeLiveCallbackTemplates, models.DescribeLiveCallbackTemplatesRequest()
            )
            assert answer.Templates == []
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{admin}/metrics") as metrics:
                    assert metrics.status == 200
            for process in processes:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)


def test_compose_gives_every_process_one_master_key_one_redis_and_a_read_only_root() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ours = {
        name: service for name, service in compose["services"].items() if service.get("image") == "framewatch:local"
    }
    assert {"ingest", "fetch", "moderate", "deliver", "streams", "config"} <= set(ours)
    for name, service in ours.items():
        env = service["environment"]
        assert env["FRAMEWATCH_MASTER_KEY"].startswith("${FRAMEWATCH_MASTER_KEY:?"), name  # required, one for all
        assert env["FRAMEWATCH_REDIS_URL"] == "redis://redis:6379/0", name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
