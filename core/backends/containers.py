"""Training images per cloud (assets/containers.json), their end of availability, and the custom
container CloudTune writes for its trainer: the Dockerfile and the one command that builds it.

Example:
    >>> image_problems("vertex", "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest",
    ...                today=date(2026, 12, 2))[1][0][:40]
    'The training image us-docker.pkg.dev/ver'
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.backends.platforms import PLATFORMS
from core.errors import BackendNotReady
from core.training.bundle import build_bundle

log = logging.getLogger(__name__)

CATALOG_PATH = Path(__file__).resolve().parents[2] / "assets" / "containers.json"
DOCKERFILE_NAME = "Dockerfile"
TRAINER_DIR = "/opt/cloudtune/trainer"
"""Where the custom image keeps the trainer bundle (train.py at its top)."""
IMAGE_NAME = "cloudtune-trainer"
TRAINER_PACKAGES: tuple[str, ...] = ("tensorflow-cpu", "keras", "numpy", "pillow")
"""What the bundled trainer imports beyond the standard library (pins from requirements.txt)."""
CLOUD_PACKAGES: dict[str, tuple[str, ...]] = {
    "azure": ("mlflow-skinny", "azureml-mlflow"),
}
"""What a cloud's own reporting needs on top (Azure ML reads metrics through MLflow)."""
IMAGE_SETTING = "image"
"""The per-platform setting that names a custom training image (Settings -> <cloud>)."""


@dataclass(frozen=True)
class Image:
    """One catalog image: where it is, what it runs, where that was read and when."""

    cloud: str
    uri: str
    accelerator: str
    python: str
    tensorflow: str
    keras: str
    source: str
    checked: str
    end_of_availability: date | None = None
    numpy: str = ""
    note: str = ""

    def matches(self, uri: str) -> bool:
        """Tell whether ``uri`` is this image (any registry or region filled in)."""
        pattern = re.escape(self.uri)
        pattern = pattern.replace(r"\{registry\}", "[a-z0-9-]+").replace(
            r"\{region\}", "[a-z0-9-]+"
        )
        return re.fullmatch(pattern, uri) is not None


@functools.cache
def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return data


def _image(cloud: str, item: Mapping[str, Any]) -> Image:
    eoa = item.get("end_of_availability")
    return Image(
        cloud=cloud,
        uri=str(item["uri"]),
        accelerator=str(item.get("accelerator", "cpu")),
        python=str(item["python"]),
        tensorflow=str(item["tensorflow"]),
        keras=str(item.get("keras", "")),
        source=str(item["source"]),
        checked=str(item["checked"]),
        end_of_availability=date.fromisoformat(eoa) if eoa else None,
        numpy=str(item.get("numpy", "")),
        note=str(item.get("note", "")),
    )


def prebuilt(cloud: str) -> list[Image]:
    """Return a cloud's prebuilt training images, newest first, as the catalog lists them."""
    return [_image(cloud, i) for i in _raw()["clouds"][cloud]["prebuilt"]]


def custom_base(cloud: str) -> Image:
    """Return the base image of the custom container CloudTune writes for ``cloud``."""
    return _image(cloud, _raw()["clouds"][cloud]["custom_base"])


def find(cloud: str, uri: str) -> Image | None:
    """Return the catalog's entry for ``uri`` on ``cloud``, or None (a custom image)."""
    return next((i for i in prebuilt(cloud) if i.matches(uri)), None)


def current_prebuilt(cloud: str, accelerator: str, today: date | None = None) -> Image | None:
    """Return the newest prebuilt image for the accelerator kind not past its end of availability."""
    day = today or date.today()
    for image in prebuilt(cloud):
        eoa = image.end_of_availability
        if image.accelerator == accelerator and (eoa is None or eoa >= day):
            return image
    return None


def image_problems(
    cloud: str, uri: str, *, today: date | None = None
) -> tuple[list[str], list[str]]:
    """Return (warnings, refusals) for a training image's end of availability.

    An image within the catalog's ``warn_days`` of its end of availability is a warning; one
    past it is a refusal (the services refuse such images). Images the catalog does not list
    (custom ones) have neither.

    Args:
        cloud: the platform ("vertex", "sagemaker", "azure").
        uri: the image the request names.
        today: the date to judge by (default: today).
    """
    image = find(cloud, uri)
    if image is None or image.end_of_availability is None:
        return [], []
    day = today or date.today()
    eoa = image.end_of_availability
    fix = (
        f"build CloudTune's custom container ({build_hint(cloud)}) and name it in "
        f"Settings → {label(cloud)} → Custom training image"
    )
    if eoa < day:
        return [], [
            f"The training image {uri} reached its end of availability on {eoa.isoformat()} "
            f"(source: {image.source}, checked {image.checked}), so {label(cloud)} refuses it: "
            f"{fix}."
        ]
    if eoa - day <= timedelta(days=int(_raw().get("warn_days", 90))):
        return [
            f"The training image {uri} reaches its end of availability on {eoa.isoformat()}; "
            f"{fix} before then."
        ], []
    return [], []


def refuse_if_unavailable(cloud: str, uri: str, today: date | None = None) -> None:
    """Raise BackendNotReady when ``uri`` is past its end of availability."""
    refusals = image_problems(cloud, uri, today=today)[1]
    if refusals:
        raise BackendNotReady(refusals[0], problems=refusals)


def label(cloud: str) -> str:
    """The platform's label, as Settings shows it."""
    return PLATFORMS[cloud].label


def custom_image(settings: Mapping[str, Any]) -> str | None:
    """Return the custom training image named in the settings, or None."""
    value = str(settings.get(IMAGE_SETTING) or "").strip()
    return value or None


# ----------------------------------------------------------------------------- the custom container


def _pins(requirements: Path | None = None) -> dict[str, str]:
    path = requirements or CATALOG_PATH.parents[1] / "requirements.txt"
    pins: dict[str, str] = {}
    if not path.is_file():
        return pins
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s#;]+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def container_requirements(cloud: str) -> list[str]:
    """Return the pinned pip lines the custom container installs (TensorFlow included).

    SageMaker's base image already holds TensorFlow and the training toolkit, so its list
    leaves TensorFlow, Keras and NumPy to the base image.
    """
    pins = _pins()
    names = list(TRAINER_PACKAGES) + list(CLOUD_PACKAGES.get(cloud, ()))
    if cloud == "sagemaker":
        names = [n for n in names if n not in ("tensorflow-cpu", "keras", "numpy")]
    return [f"{n}=={pins[n]}" if n in pins else n for n in names]


def dockerfile(cloud: str, settings: Mapping[str, Any]) -> str:
    """Return the Dockerfile of CloudTune's training image for ``cloud``.

    The image holds the trainer bundle (core.training.bundle) at ``TRAINER_DIR`` and the pinned
    requirements. On Vertex AI and Azure ML its entry point is the trainer; on SageMaker the
    base is the TensorFlow training image and the trainer is its script-mode program.
    """
    base = custom_base(cloud)
    uri = base.uri.replace("{region}", str(settings.get("region") or "us-east-1"))
    lines = [
        f"# CloudTune's trainer for {label(cloud)}. Base: {uri} (Python {base.python}, "
        f"TensorFlow {base.tensorflow}; {base.source}, checked {base.checked}).",
        f"FROM {uri}",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2",
        "COPY requirements.txt /tmp/cloudtune-requirements.txt",
        "RUN python -m pip install --no-cache-dir -r /tmp/cloudtune-requirements.txt",
        f"COPY trainer/ {TRAINER_DIR}/",
    ]
    if cloud == "sagemaker":
        lines += [
            f"RUN mkdir -p /opt/ml/code && cp -r {TRAINER_DIR}/. /opt/ml/code/",
            "ENV SAGEMAKER_PROGRAM=train.py",
        ]
    else:
        lines += [f"WORKDIR {TRAINER_DIR}", 'ENTRYPOINT ["python", "train.py"]']
    return "\n".join(lines) + "\n"


def image_uri_default(cloud: str, settings: Mapping[str, Any], tag: str = "latest") -> str:
    """Return where the build command pushes the image (what to name in Settings)."""
    if cloud == "vertex":
        region = settings.get("region") or "us-central1"
        project = settings.get("project") or "YOUR_PROJECT"
        return f"{region}-docker.pkg.dev/{project}/cloudtune/{IMAGE_NAME}:{tag}"
    if cloud == "sagemaker":
        region = settings.get("region") or "us-east-1"
        account = _account(str(settings.get("role_arn") or "")) or "ACCOUNT_ID"
        return f"{account}.dkr.ecr.{region}.amazonaws.com/{IMAGE_NAME}:{tag}"
    registry = settings.get("registry") or "YOUR_REGISTRY"
    return f"{registry}.azurecr.io/{IMAGE_NAME}:{tag}"


def _account(role_arn: str) -> str | None:
    m = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):", role_arn)
    return m.group(1) if m else None


def build_hint(cloud: str) -> str:
    """Name the tool that builds and pushes the image (for sentences)."""
    return {
        "vertex": "`gcloud builds submit`",
        "sagemaker": "`docker build` and `docker push` to ECR",
        "azure": "`az acr build`",
    }[cloud]


def build_command(cloud: str, settings: Mapping[str, Any], folder: str = ".") -> str:
    """Return the one command that builds the image from ``folder`` and pushes it.

    Args:
        cloud: the platform.
        settings: its settings (project/region, role ARN/region, registry).
        folder: the folder :func:`write_context` wrote.
    """
    uri = image_uri_default(cloud, settings)
    if cloud == "vertex":
        project = settings.get("project") or "YOUR_PROJECT"
        return f"gcloud builds submit {folder} --project {project} --tag {uri}"
    if cloud == "sagemaker":
        region = settings.get("region") or "us-east-1"
        registry = uri.split("/", 1)[0]
        return (
            f"aws ecr get-login-password --region {region} | docker login --username AWS "
            f"--password-stdin 763104351884.dkr.ecr.{region}.amazonaws.com && "
            f"aws ecr get-login-password --region {region} | docker login --username AWS "
            f"--password-stdin {registry} && "
            f"docker build -t {uri} {folder} && docker push {uri}"
        )
    registry = settings.get("registry") or "YOUR_REGISTRY"
    return f"az acr build --registry {registry} --image {uri.split('/', 1)[1]} {folder}"


def write_context(
    cloud: str, settings: Mapping[str, Any], dest: str | Path, bundle: Path | None = None
) -> Path:
    """Write a Docker build context: Dockerfile, requirements.txt, trainer/ and BUILD.txt.

    Args:
        cloud: the platform.
        settings: its settings.
        dest: a missing or empty folder.
        bundle: an already built trainer bundle to copy (default: build one).

    Returns:
        The folder.

    Raises:
        FileExistsError: ``dest`` is not empty.
    """
    folder = Path(dest)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"The build folder {folder} is not empty; name a new folder.")
    folder.mkdir(parents=True, exist_ok=True)
    if bundle is None:
        build_bundle(folder / "trainer")
    else:
        shutil.copytree(bundle, folder / "trainer")
    (folder / DOCKERFILE_NAME).write_text(dockerfile(cloud, settings), encoding="utf-8")
    reqs = "".join(f"{line}\n" for line in container_requirements(cloud))
    (folder / "requirements.txt").write_text(reqs, encoding="utf-8")
    (folder / "BUILD.txt").write_text(recipe(cloud, settings, str(folder)), encoding="utf-8")
    return folder


def recipe(cloud: str, settings: Mapping[str, Any], folder: str = ".") -> str:
    """Return the build-and-use instructions for the custom container, as plain text."""
    return (
        f"Build and push CloudTune's training image for {label(cloud)}:\n\n"
        f"  {build_command(cloud, settings, folder)}\n\n"
        f"Then set Settings → {label(cloud)} → Custom training image to\n"
        f"  {image_uri_default(cloud, settings)}\n"
    )


def notes(
    cloud: str, uri: str, settings: Mapping[str, Any], today: date | None = None
) -> list[str]:
    """Return what the Launch page says about the image a request names (warnings first)."""
    warnings, refusals = image_problems(cloud, uri, today=today)
    out = refusals + warnings
    image = find(cloud, uri)
    if image is not None:
        out.append(
            f"Training image {uri}: Python {image.python}, TensorFlow {image.tensorflow} "
            f"(source {image.source}, checked {image.checked})."
        )
    elif custom_image(settings):
        out.append(f"Custom training image {uri}: built by `{build_command(cloud, settings)}`.")
    else:
        out.append(
            f"Custom training image {uri}: build it with `{build_command(cloud, settings)}`."
        )
    return out


def assert_known(clouds: Sequence[str] = ("vertex", "sagemaker", "azure")) -> None:
    """Read every catalog entry (raises KeyError/ValueError on a malformed catalog)."""
    for cloud in clouds:
        prebuilt(cloud)
        custom_base(cloud)
