"""The platforms, once: name, labels, backend class, settings (never secrets) and defaults.

Every table of platforms derives from :data:`PLATFORMS`: the backend factory's modules
(``core.backends.base``), the labels pages and statistics show, the settings the app asks
for, each platform's default machine and region, and the format of its request preview.

Example:
    >>> PLATFORMS["vertex"].label
    'Vertex AI'
    >>> platform("azure").default_instance
    'Standard_DS3_v2'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.spec import StudySpec
    from core.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingField:
    """One setting of a platform: its key, label, help and default."""

    key: str
    label: str
    help: str = ""
    default: Any = None


@dataclass(frozen=True)
class Platform:
    """One place trials run.

    Attributes:
        name: the backend's name ("local", "sagemaker", "vertex", "azure").
        label: the name shown to people ("AWS SageMaker").
        short_label: the name in charts and tables ("Local").
        module: the module of its backend class.
        class_name: the backend class.
        default_instance: the machine a run gets when the settings name none.
        default_region: the region a run gets when the settings name none.
        preview: the format of its request preview ("json", "yaml"; None: no request).
        settings: the settings the app asks for.
    """

    name: str
    label: str
    short_label: str
    module: str
    class_name: str
    default_instance: str
    default_region: str
    preview: Literal["json", "yaml"] | None = None
    settings: tuple[SettingField, ...] = field(default_factory=tuple)


_SETTINGS: dict[str, list[SettingField]] = {
    "local": [
        SettingField(
            "rate_per_hour",
            "This machine's hourly rate (USD)",
            "What an hour of this machine costs you, for the cost of local runs (0 = free).",
            0.0,
        ),
    ],
    "sagemaker": [
        SettingField("region", "AWS region", "e.g. us-east-1", "us-east-1"),
        SettingField(
            "role_arn",
            "SageMaker execution role ARN",
            "arn:aws:iam::<account>:role/<name>: the role SageMaker training jobs assume.",
        ),
        SettingField("bucket", "S3 bucket", "Where datasets, code and models are staged."),
        SettingField("instance_type", "Instance type", "", "ml.m5.xlarge"),
        SettingField(
            "profile",
            "AWS profile",
            "A named profile from ~/.aws/config (empty: the default credential chain).",
        ),
        SettingField(
            "image",
            "Custom training image",
            "The image trials run in (empty: the TensorFlow training image of assets/containers.json). CloudTune writes its Dockerfile with the "
            "export and prints the command that builds and pushes it.",
        ),
    ],
    "vertex": [
        SettingField("project", "Google Cloud project ID", "e.g. my-project-123"),
        SettingField("region", "Region", "e.g. us-central1", "us-central1"),
        SettingField(
            "bucket", "Staging bucket", "The bucket (name only) for the trainer package and data."
        ),
        SettingField("instance_type", "Machine type", "", "n1-standard-4"),
        SettingField("accelerator_type", "Accelerator", "e.g. NVIDIA_TESLA_T4 (empty: none)"),
        SettingField("accelerator_count", "Accelerator count", "", 0),
        SettingField(
            "service_account",
            "Service account for the trials",
            "The service account the trials run as (an email; empty: the project's Vertex AI "
            "Custom Code Service Agent). It must be able to read the staging bucket.",
        ),
        SettingField(
            "image",
            "Custom training image",
            "The image trials run in (empty: a current prebuilt image, else CloudTune's image at its default Artifact Registry path). CloudTune writes its Dockerfile with the "
            "export and prints the command that builds and pushes it.",
        ),
    ],
    "azure": [
        SettingField("subscription_id", "Subscription ID", "The Azure subscription's GUID."),
        SettingField("resource_group", "Resource group"),
        SettingField("workspace", "Azure ML workspace"),
        SettingField("compute", "Compute cluster", "The name of an AmlCompute cluster."),
        SettingField(
            "instance_type",
            "VM size of the cluster",
            "Used only when the workspace cannot say: a launch reads the cluster's real VM size, "
            "which is what the trials run on and what prices them.",
            "Standard_DS3_v2",
        ),
        SettingField(
            "early_termination",
            "Early termination",
            "none, bandit, median_stopping or truncation_selection (empty: none).",
        ),
        SettingField(
            "managed_identity_client_id",
            "Managed identity client ID",
            "The client ID of a user-assigned managed identity to sign in with, when CloudTune "
            "runs on Azure (empty: the system-assigned one, or the other credential sources).",
        ),
        SettingField(
            "registry",
            "Container registry",
            "The Azure Container Registry (name only) `az acr build` pushes CloudTune's image to.",
        ),
        SettingField(
            "image",
            "Custom training image",
            "The image trials run in (empty: the curated TensorFlow environment). CloudTune writes its Dockerfile with the "
            "export and prints the command that builds and pushes it.",
        ),
    ],
}


PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform(
            "local",
            "Local (KerasTuner)",
            "Local",
            "core.backends.local.backend",
            "LocalBackend",
            "local",
            "local",
            None,
            tuple(_SETTINGS["local"]),
        ),
        Platform(
            "sagemaker",
            "AWS SageMaker",
            "AWS SageMaker",
            "core.backends.sagemaker.backend",
            "SageMakerBackend",
            "ml.m5.xlarge",
            "us-east-1",
            "json",
            tuple(_SETTINGS["sagemaker"]),
        ),
        Platform(
            "vertex",
            "Vertex AI",
            "Vertex AI",
            "core.backends.vertex.backend",
            "VertexBackend",
            "n1-standard-4",
            "us-central1",
            "json",
            tuple(_SETTINGS["vertex"]),
        ),
        Platform(
            "azure",
            "Azure ML",
            "Azure ML",
            "core.backends.azure.backend",
            "AzureBackend",
            "Standard_DS3_v2",
            "eastus",
            "yaml",
            tuple(_SETTINGS["azure"]),
        ),
    )
}
"""Every platform, by name, in the order the app lists them."""

PLATFORM_SETTINGS: dict[str, list[SettingField]] = {
    n: list(p.settings) for n, p in PLATFORMS.items()
}
"""The settings each platform asks for (derived from PLATFORMS)."""


def platform(name: str) -> Platform:
    """Return the platform called ``name``.

    Raises:
        KeyError: no such platform.
    """
    return PLATFORMS[name]


def load_settings(store: Store, backend: str) -> dict[str, Any]:
    """Return a platform's stored settings over its defaults."""
    out = {f.key: f.default for f in PLATFORM_SETTINGS.get(backend, []) if f.default is not None}
    out.update(store.settings_with_prefix(f"{backend}."))
    return out


def save_settings(store: Store, backend: str, values: dict[str, Any]) -> None:
    """Store a platform's settings (empty values delete the key)."""
    for key, value in values.items():
        store.set_setting(f"{backend}.{key}", None if value in ("", None) else value)


def instance_key(backend: str) -> str:
    """Return the settings key that holds a platform's machine type."""
    return {"local": ""}.get(backend, "instance_type")


NOTE_MODULES: dict[str, str] = {
    "local": "core.backends.local.hypermodel",
    "sagemaker": "core.backends.sagemaker.request",
    "vertex": "core.backends.vertex.request",
    "azure": "core.backends.azure.request",
}
"""The module whose ``early_stopping_note`` says how each platform stops trials early."""


def early_stopping_note(name: str, spec: StudySpec, settings: dict[str, Any]) -> str | None:
    """Say how a platform applies ``budget.early_stopping`` (None: the spec asks for none).

    Args:
        name: the platform.
        spec: the study.
        settings: the platform's settings (a setting may override the spec).

    Returns:
        One sentence, or None.
    """
    import importlib

    note: str | None = importlib.import_module(NOTE_MODULES[name]).early_stopping_note(
        spec, settings
    )
    return note


def platform_label(backend: str) -> str:
    """Return the label people know a backend by (its short label; the name if unknown)."""
    known = PLATFORMS.get(backend)
    return known.short_label if known is not None else backend
