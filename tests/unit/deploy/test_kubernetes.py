"""deploy/kubernetes: every manifest valid against the Kubernetes schemas (kubernetes-validate,
strict: an unknown field fails), every container locked down, and the shape the deployment
promises: api probes, autoscaler and disruption budget; one beat replaced with Recreate; the
migration Job as the owner; the evidence claim ReadWriteMany on api and worker; a Secret
example with placeholders only; every secret file the settings name mounted where read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.34.0"
NOT_RESOURCES = {"kustomization.yaml", "secret.example.yaml"}


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found.extend(_documents(path.name))
    return found


def _one(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def _pod_specs(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{m['kind']}/{m['metadata']['name']}": m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    }


def test_every_manifest_is_valid_strictly(manifests: list[dict[str, Any]]) -> None:
    assert len(manifests) >= 12
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_resource_but_the_secret_example() -> None:
    (kustomization,) = _documents("kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - NOT_RESOURCES
    assert listed == files
    assert kustomization["namespace"] == "palermo"


def test_every_container_is_locked_down(manifests: list[dict[str, Any]]) -> None:
    pods = _pod_specs(manifests)
    assert set(pods) == {
        "Deployment/palermo-api",
        "Deployment/palermo-worker",
        "Deployment/palermo-beat",
        "Job/palermo-migrate",
    }
    for name, pod in pods.items():
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        tmp = [v for v in pod["volumes"] if v["name"] == "tmp"]
        assert tmp == [{"name": "tmp", "emptyDir": {}}], name
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            where = f"{name} {container['name']}"
            assert context["runAsNonRoot"] is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] == "tmp", where
            assert "limits" in container["resources"], where


def test_the_api_probes_scales_and_keeps_a_replica(manifests: list[dict[str, Any]]) -> None:
    api = _one(manifests, "Deployment", "palermo-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    labels = api["spec"]["template"]["metadata"]["labels"]
    hpa = _one(manifests, "HorizontalPodAutoscaler", "palermo-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "palermo-api",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = _one(manifests, "PodDisruptionBudget", "palermo-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _one(manifests, "Service", "palermo-api")
    assert service["spec"]["selector"].items() <= labels.items()


def test_one_beat_replaced_with_recreate(manifests: list[dict[str, Any]]) -> None:
    beat = _one(manifests, "Deployment", "palermo-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = beat["spec"]["template"]["spec"]["containers"]
    # Without --lock-wait it waits for the advisory lock rather than exiting.
    assert container["args"] == ["beat"]
    assert not any(
        m["kind"] == "HorizontalPodAutoscaler"
        and m["spec"]["scaleTargetRef"]["name"] == "palermo-beat"
        for m in manifests
    )


def test_the_migration_job_runs_init_as_the_owner(manifests: list[dict[str, Any]]) -> None:
    job = _one(manifests, "Job", "palermo-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][:5] == [
        "init",
        "--owner-role",
        "palermo_owner",
        "--app-role",
        "palermo_api",
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PALERMO_MIGRATION_DATABASE_URL_FILE"].startswith("/run/secrets/palermo/")
    for name in ("palermo-api", "palermo-worker", "palermo-beat"):
        pod = _one(manifests, "Deployment", name)["spec"]["template"]["spec"]
        (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
        keys = {item["key"] for item in secrets["secret"]["items"]}
        assert "migration-database-url" not in keys, name
        assert "app-db-password" not in keys, name


def test_evidence_is_one_read_write_many_claim(manifests: list[dict[str, Any]]) -> None:
    claim = _one(manifests, "PersistentVolumeClaim", "palermo-evidence")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    config = _one(manifests, "ConfigMap", "palermo-config")["data"]
    for name in ("palermo-api", "palermo-worker"):
        pod = _one(manifests, "Deployment", name)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = volumes[mounts[config["PALERMO_EVIDENCE_DIR"]]]
        assert volume["persistentVolumeClaim"] == {"claimName": "palermo-evidence"}, name


def test_secrets_are_placeholders_and_every_secret_file_is_mounted(
    manifests: list[dict[str, Any]],
) -> None:
    (example,) = [m for m in manifests if m["kind"] == "Secret"]
    assert all("REPLACE_ME" in value for value in example["stringData"].values())
    config = _one(manifests, "ConfigMap", "palermo-config")["data"]
    files = {k: v for k, v in config.items() if k.endswith("_FILE")}
    assert files
    for name, pod in _pod_specs(manifests).items():
        (container,) = pod["containers"]
        assert {"configMapRef": {"name": "palermo-config"}} in container["envFrom"]
        (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")
        items = secrets["secret"].get("items")
        keys = [i["path"] for i in items] if items else list(example["stringData"])
        mounted = {f"{mount['mountPath']}/{key}" for key in keys}
        named = set(files.values()) | {
            e["value"] for e in container.get("env", []) if e["name"].endswith("_FILE")
        }
        assert named <= mounted, (name, named - mounted)
        for item in items or []:
            assert item["key"] in example["stringData"], (name, item["key"])


def test_network_policies_deny_by_default(manifests: list[dict[str, Any]]) -> None:
    deny = _one(manifests, "NetworkPolicy", "palermo-default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert "ingress" not in deny["spec"]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    api = _one(manifests, "NetworkPolicy", "palermo-api-ingress")
    (rule,) = api["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
