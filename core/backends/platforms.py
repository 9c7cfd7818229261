"""Per-platform settings the app asks for (never secrets), and how they are stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.store import Store


@dataclass(frozen=True)
class SettingField:
    """One setting of a platform: its key, label, help and default."""

    key: str
    label: str
    help: str = ""
    default: Any = None


PLATFORM_SETTINGS: dict[str, list[SettingField]] = {
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
    ],
    "azure": [
        SettingField("subscription_id", "Subscription ID", "The Azure subscription's GUID."),
        SettingField("resource_group", "Resource group"),
        SettingField("workspace", "Azure ML workspace"),
        SettingField("compute", "Compute cluster", "The name of an AmlCompute cluster."),
        SettingField("instance_type", "VM size of the cluster", "", "Standard_DS3_v2"),
    ],
}


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
