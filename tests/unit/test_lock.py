"""The locks say what pyproject.toml pins: every direct pin is in them at its version, and the
image's lock (requirements.lock) agrees with the test lock on every package they share."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", path.read_text(), re.M):
        found.setdefault(_normal(name), set()).add(version)
    return found


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)", requirement)
        assert match, f"{requirement!r} is not pinned with =="
        pins[_normal(match.group(1))] = match.group(2)
    return pins


def test_every_pin_of_pyproject_is_locked_at_its_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime, test = _pins(project["dependencies"] + extras["job"]), _pins(extras["test"])
    image_lock, test_lock = _locked(ROOT / "requirements.lock"), _locked(ROOT / "requirements-test.lock")
    for name, version in runtime.items():
        assert image_lock.get(name) == {version}, (
            f"{name}=={version} is not what requirements.lock holds: run make lock"
        )
    for name, version in {**runtime, **test}.items():
        assert test_lock.get(name) == {version}, (
            f"{name}=={version} is not what requirements-test.lock holds: run make lock"
        )
    # both TensorFlow builds are locked, one per architecture (markers choose)
    assert {"tensorflow", "tensorflow-cpu"} <= set(image_lock)


def test_the_two_locks_agree_on_every_shared_package():
    image_lock, test_lock = _locked(ROOT / "requirements.lock"), _locked(ROOT / "requirements-test.lock")
    assert set(image_lock) <= set(test_lock)
    for name, versions in image_lock.items():
        assert test_lock[name] == versions, name


def test_every_locked_package_is_hash_pinned():
    for lock in ("requirements.lock", "requirements-test.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().strip())
        for entry in entries:
            if not entry.startswith("#"):
                assert "--hash=sha256:" in entry, f"{lock}: {entry.splitlines()[0]} has no hash"
