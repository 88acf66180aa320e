"""The image of deployments/Dockerfile: built from the lock file, which keeps pyproject's ranges."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _locked(name: str = "requirements.lock") -> dict[str, str]:
    text = (ROOT / name).read_text(encoding="utf-8")
    return {
        canonicalize_name(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", text, re.M)
    }


def test_the_lock_pins_every_dependency_within_pyproject_ranges_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = _locked()
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements.lock: regenerate it"
        assert req.specifier.contains(locked[name], prereleases=True), (req, locked[name])
    assert "faker" not in locked  # the demo's generator stays out of the image
    _hashed("requirements.lock")
    dockerfile = (ROOT / "deployments" / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile


def _hashed(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    for block in re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.strip()):
        assert "--hash=sha256:" in block, f"no hash for {block.splitlines()[0]} in {name}"


def test_ci_installs_the_image_lock_plus_the_test_extra_with_hashes() -> None:
    """.ci/run runs the README's test command word for word, and that command installs
    requirements-test.lock (hashes required) and nothing unpinned; the lock pins every
    package of the image's lock at the same version."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.endswith("&& tests/run"))
    assert "pip install --require-hashes -r requirements-test.lock" in command
    assert "pip install --no-deps -e ." in command
    assert f"\n{command}\n" in ci
    # Nothing else installs Python packages: CI tests what the command installs.
    assert ci.count("pip install") == command.count("pip install")
    runtime, test = _locked(), _locked("requirements-test.lock")
    assert {k: test.get(k) for k in runtime} == runtime, "regenerate requirements-test.lock"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in extras["optional-dependencies"]["test"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in test, f"{req.name} is not in requirements-test.lock: regenerate it"
        assert req.specifier.contains(test[name], prereleases=True), (req, test[name])
    _hashed("requirements-test.lock")


@pytest.mark.slow
def test_the_image_builds_and_runs_the_cli() -> None:
    engine = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True)
    if not engine or engine.returncode != 0:
        pytest.skip("no Docker engine on this machine: the image build is not tested here")
    tag = "kizuna-image-test"
    subprocess.run(
        ["docker", "build", "-f", "deployments/Dockerfile", "-t", tag, "."], cwd=ROOT, check=True
    )
    out = subprocess.run(
        ["docker", "run", "--rm", tag, "kizuna", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "kizuna" in out.stdout
