"""deploy/kubernetes renders offline (`kubectl kustomize`), its standard kinds pass the Kubernetes schemas, and it
matches the code: every stage deployed and scaled on the queue the topology declares, every probe on a route the
process serves on that port, secrets by reference only, non-root read-only containers that outlive their drain."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from framewatch.broker.topology import STAGES, Topology
from framewatch.runtime.settings import Settings
from framewatch.wiring import ingest_apps, worker_listeners

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
    topology = Topology(settings["FRAMEWATCH_NAMESPACE"])
    deployments, scaled = of_kind(base, "Deployment"), of_kind(base, "ScaledObject")
    for stage in STAGES:
        [container] = deployments[f"framewatch-{stage}"]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["worker", stage]
        scaler = scaled[f"framewatch-{stage}"]
        assert scaler["spec"]["scaleTargetRef"]["name"] == f"framewatch-{stage}"
        [trigger] = scaler["spec"]["triggers"]
        assert (trigger["type"], trigger["metadata"]["queueName"]) == ("rabbitmq", topology.queue(stage))
        assert trigger["authenticationRef"]["name"] in of_kind(base, "TriggerAuthentication")
    assert set(scaled) == {f"framewatch-{stage}" for stage in STAGES}
    hpa = of_kind(base, "HorizontalPodAutoscaler")["framewatch-ingest"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "framewatch-ingest" and hpa["spec"]["minReplicas"] >= 2


def routes(app: Any) -> set[str]:
    return {resource.canonical for resource in app.router.resources()}


def test_probes_and_services_reach_what_the_processes_serve(base: list[dict[str, Any]]) -> None:
    data = of_kind(base, "ConfigMap")["framewatch-settings"]["data"]
    settings = Settings(
        _env_file=None, database_url="sqlite:///:memory:", blob_url="s3://bucket/prefix", master_key="x" * 43 + "="
    )
    callbacks, admin = ingest_apps(settings)
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
