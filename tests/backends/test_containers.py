"""The container catalog, CloudTune's custom image per cloud, and the Settings fields readiness names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core.backends import containers
from core.backends.azure.backend import credential_source
from core.backends.platforms import PLATFORMS

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "vertex": {"project": "my-proj", "region": "europe-west4"},
    "sagemaker": {"region": "eu-west-1", "role_arn": "arn:aws:iam::123456789012:role/SM"},
    "azure": {"registry": "cloudtunecr"},
}


def test_every_catalog_entry_has_its_source_and_date() -> None:
    for cloud in SETTINGS:
        for image in [*containers.prebuilt(cloud), containers.custom_base(cloud)]:
            assert image.source and re.fullmatch(r"\d{4}-\d\d-\d\d", image.checked)
            assert image.python and image.tensorflow
    assert all(i.end_of_availability for i in containers.prebuilt("vertex"))


@pytest.mark.parametrize("cloud", sorted(SETTINGS))
def test_the_custom_image_holds_the_bundle_and_pinned_requirements(
    cloud: str, tmp_path: Path
) -> None:
    folder = containers.write_context(cloud, SETTINGS[cloud], tmp_path / "ctx")
    docker = (folder / "Dockerfile").read_text(encoding="utf-8")
    assert docker.splitlines()[1].startswith("FROM ")
    assert (folder / "trainer" / "train.py").is_file()
    assert (folder / "trainer" / "core" / "training" / "train.py").is_file()
    reqs = (folder / "requirements.txt").read_text(encoding="utf-8").split()
    assert all("==" in r for r in reqs)
    if cloud == "sagemaker":  # the DLC brings TensorFlow and runs train.py in script mode
        assert "SAGEMAKER_PROGRAM=train.py" in docker
        assert not any(r.startswith("tensorflow") for r in reqs)
    else:
        assert "tensorflow-cpu==2.21.0" in reqs and 'ENTRYPOINT ["python", "train.py"]' in docker
    with pytest.raises(FileExistsError):
        containers.write_context(cloud, SETTINGS[cloud], folder)


def test_one_command_builds_and_pushes_each_image() -> None:
    vertex = containers.build_command("vertex", SETTINGS["vertex"])
    assert vertex == (
        "gcloud builds submit . --project my-proj "
        "--tag europe-west4-docker.pkg.dev/my-proj/cloudtune/cloudtune-trainer:latest"
    )
    aws = containers.build_command("sagemaker", SETTINGS["sagemaker"])
    assert "docker build -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cloudtune-trainer" in aws
    assert aws.endswith(
        "docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cloudtune-trainer:latest"
    )
    assert containers.build_command("azure", SETTINGS["azure"]) == (
        "az acr build --registry cloudtunecr --image cloudtune-trainer:latest ."
    )


def _messages() -> list[str]:
    """Every string literal in the cloud backends (readiness sentences among them)."""
    out: list[str] = []
    for path in (ROOT / "core" / "backends").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
    for cloud in SETTINGS:  # the image sentences are built from the platform's label
        old = (
            containers.prebuilt(cloud)[0]
            .uri.replace("{registry}", "us")
            .replace("{region}", "us-east-1")
        )
        out += containers.notes(cloud, old, {}) + containers.image_problems(cloud, old)[1]
    return out


def test_every_settings_field_a_message_names_exists() -> None:
    by_label = {p.label: p for p in PLATFORMS.values()}
    named = 0
    for text in _messages():
        for platform, field in re.findall(r"Settings → ([A-Za-z ]+?) → ([A-Za-z ]+[a-zA-Z])", text):
            assert platform in by_label, text
            assert field in {f.label for f in by_label[platform].settings}, text
            named += 1
        for platform in re.findall(r"Settings → ([A-Z][A-Za-z]+(?: [A-Z][A-Za-z]+)?)", text):
            assert platform in by_label, text
        for key in re.findall(r"\(azure\.([a-z_]+)\)", text):
            assert key in {f.key for f in PLATFORMS["azure"].settings}, text
            named += 1
    assert named >= 3  # the profile, the managed identity client id, the custom image...
    assert "profile" in {f.key for f in PLATFORMS["sagemaker"].settings}
    assert "managed_identity_client_id" in {f.key for f in PLATFORMS["azure"].settings}


def test_azure_accepts_each_source_default_azure_credential_tries(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path), "AZURE_CONFIG_DIR": str(tmp_path / "none")}
    assert credential_source({}, home) is None
    sp = dict(home, AZURE_CLIENT_ID="c", AZURE_TENANT_ID="t", AZURE_CLIENT_SECRET="s")
    assert credential_source({}, sp) == "environment variables (service principal)"
    wi = dict(home, AZURE_CLIENT_ID="c", AZURE_TENANT_ID="t", AZURE_FEDERATED_TOKEN_FILE="/f")
    assert credential_source({}, wi) == "workload identity"
    assert credential_source({"managed_identity_client_id": "id"}, home) == "managed identity"
    assert credential_source({}, dict(home, IDENTITY_ENDPOINT="http://x")) == "managed identity"
    cache = tmp_path / ".IdentityService" / "msal.cache"
    cache.parent.mkdir()
    cache.write_text("{}", encoding="utf-8")
    assert credential_source({}, home) == "the shared token cache"
    cache.unlink()
    record = tmp_path / ".azure" / "ms-azuretools.vscode-azureresourcegroups" / "authRecord.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}", encoding="utf-8")
    assert credential_source({}, home) == "VS Code's Azure sign-in"


def test_the_vertex_fake_refuses_an_image_past_end_of_availability() -> None:
    from tests.fake_vertex import _validate

    old = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
    pool = {"pythonPackageSpec": {"executorImageUri": old, "args": []}}
    body = {"trialJobSpec": {"workerPoolSpecs": [pool]}}
    assert any("end of availability" in p for p in _validate(body))
    pool = {"containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/cloudtune-trainer:1"}}
    body = {"trialJobSpec": {"workerPoolSpecs": [pool]}}
    assert not any("image" in p or "exactly one" in p for p in _validate(body))
