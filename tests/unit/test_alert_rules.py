"""The alert rules, by Prometheus's own promtool: valid, unit-tested rule by rule (tests/alerts,
firing and non-firing series for each), and the plain rules file is the chart's rendering."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "fruits-alerts.yaml"
RULE_TESTS = ROOT / "tests" / "alerts" / "fruits-alerts.test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: apt-get install prometheus (.ci/run installs it).", pytrace=False)
    return found


def test_the_rules_file_is_valid(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_every_rule_fires_on_its_case_and_only_then(promtool):
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        line.split("alertname:", 1)[1].strip() for line in RULE_TESTS.read_text().splitlines() if "alertname:" in line
    }
    assert tested == {"FruitsRunFailed", "FruitsNoRecentSuccess", "FruitsErrorRowsHigh", "FruitsRunSlow"}


def test_the_plain_rules_file_is_what_the_chart_renders():
    result = subprocess.run([sys.executable, ".ci/alert_rules.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
