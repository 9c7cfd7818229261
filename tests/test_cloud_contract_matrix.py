"""The framework-version matrix's reading of the catalog and of pytest's report (no venvs)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench import cloud_contract as cc
from core.backends import containers


def test_catalog_versions_become_pip_requirements() -> None:
    assert cc.pin("numpy", "1.23.5") == "numpy==1.23.5"
    assert cc.pin("numpy", "2.1+") == "numpy>=2.1,<2.2"  # the oldest the image may hold
    assert cc.pin("tensorflow-cpu", "2.17") == "tensorflow-cpu==2.17.*"
    assert cc.pin("keras", "3 (TensorFlow 2.21's dependency)") is None  # left to pip
    curated = containers.prebuilt("azure")[0]
    lines = cc.requirements_for(curated)
    assert lines[:3] == [
        f"tensorflow-cpu=={curated.tensorflow}",
        f"keras=={curated.keras}",
        f"numpy=={curated.numpy}",
    ]
    assert lines[3].startswith("mlflow-skinny==")  # requirements.txt's pin
    names = [t.name for t in cc.targets()]
    assert names == ["sagemaker-dlc", "azure-curated", "custom-container"]


def test_report_is_read_per_cloud() -> None:
    report = ET.fromstring(
        "<testsuites><testsuite>"
        '<testcase classname="tests.contract.test_vertex_contract" name="a"/>'
        '<testcase classname="tests.contract.test_vertex_contract" name="b">'
        '<failure message="AssertionError: exited 2&#10;more"/></testcase>'
        '<testcase classname="tests.contract.test_azure_contract" name="c"/>'
        "</testsuite></testsuites>"
    )
    clouds = cc._outcomes(report)
    assert clouds["vertex"]["passed"] == 1 and clouds["vertex"]["failed"] == 1
    assert clouds["vertex"]["tests"]["b"] == "failed: AssertionError: exited 2"
    assert clouds["azure"] == {"passed": 1, "failed": 0, "tests": {"c": "passed"}}
