"""The chart's key-expiry PrometheusRule renders and alerts on the operator's metric."""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python
import yaml

from .support import ROOT

TEMPLATE = ROOT / "charts" / "ssmd-operator" / "templates" / "prometheusrule-keys.yaml"
CAPABILITY = '(.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PrometheusRule")'


def render(tmp_path: Path, values: dict[str, object]) -> str:
    # The SDK cannot pass API versions: render a copy that assumes the CRD is installed.
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: ssmd-operator\nversion: 0.0.0\n")
    text = TEMPLATE.read_text()
    assert CAPABILITY in text
    (chart / "templates" / TEMPLATE.name).write_text(text.replace(CAPABILITY, "true"))
    out = helm_python.Chart.load(str(chart)).render(values, name="r", namespace="ssmd")
    shutil.rmtree(chart)
    return "".join(out.values())


def test_key_alerts(tmp_path: Path) -> None:
    doc = yaml.safe_load(render(tmp_path, {"keyAlerts": {"expiringSoonDays": 7}}))
    rules = {r["alert"]: r for r in doc["spec"]["groups"][0]["rules"]}
    assert set(rules) == {"KeyExpiringSoon", "KeyExpired"}
    assert (
        rules["KeyExpiringSoon"]["expr"]
        == "ssmd_key_expires_in_days > 0 and ssmd_key_expires_in_days < 7"
    )
    assert rules["KeyExpired"]["expr"] == "ssmd_key_expires_in_days <= 0"
    assert "{{ $labels.key_name }}" in rules["KeyExpired"]["annotations"]["summary"]
    default = yaml.safe_load(render(tmp_path, {}))
    assert "< 14" in default["spec"]["groups"][0]["rules"][0]["expr"]
    assert render(tmp_path, {"keyAlerts": {"enabled": False}}).strip() == ""
