"""The locks say what pyproject.toml pins: every direct pin is in them at its version; the lean
image's lock (requirements.lock) has no TensorFlow, the -tf image's (requirements-tf.lock) holds
only what the `tf` extra adds to it, and both agree with the test lock on every package."""

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


LOCKS = ("requirements.lock", "requirements-tf.lock", "requirements-test.lock")


def test_every_pin_of_pyproject_is_locked_at_its_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lean, tf, test = _pins(project["dependencies"] + extras["job"]), _pins(extras["tf"]), _pins(extras["test"])
    image_lock, tf_lock, test_lock = (_locked(ROOT / lock) for lock in LOCKS)
    for lock, name_of_lock, pins in (
        (image_lock, "requirements.lock", lean),
        (tf_lock, "requirements-tf.lock", tf),
        (test_lock, "requirements-test.lock", {**lean, **tf, **test}),
    ):
        for name, version in pins.items():
            assert lock.get(name) == {version}, f"{name}=={version} is not what {name_of_lock} holds: run make lock"
    # both TensorFlow builds are locked, one per architecture (markers choose), for the -tf image only
    assert {"tensorflow", "tensorflow-cpu", "keras"} <= set(tf_lock)
    assert not {"tensorflow", "tensorflow-cpu", "keras", "h5py", "libclang"} & set(image_lock)


def test_the_locks_agree_on_every_shared_package():
    image_lock, tf_lock, test_lock = (_locked(ROOT / lock) for lock in LOCKS)
    assert not set(image_lock) & set(tf_lock)  # the -tf image adds a layer, never a second copy of a package
    assert set(image_lock) | set(tf_lock) <= set(test_lock)  # make install has all that the images run
    for name, versions in {**image_lock, **tf_lock}.items():
        assert test_lock[name] == versions, name


def test_every_locked_package_is_hash_pinned():
    for lock in LOCKS:
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().strip())
        for entry in entries:
            if not entry.startswith("#"):
                assert "--hash=sha256:" in entry, f"{lock}: {entry.splitlines()[0]} has no hash"
