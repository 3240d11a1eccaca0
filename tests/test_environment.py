"""The GPU environment files agree with the pinned requirement files."""
import re
from pathlib import Path

import pytest
import yaml

import d2l_shim

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements"

#: Conda file of each framework's GPU environment.
GPU_FILES = {row.name: REPO_ROOT / row.gpu_environment for row in d2l_shim.TABLE}

#: The CPU package here and the name of its CUDA build on a GPU box.
GPU_BUILD_OF = {"mxnet": "mxnet-cu112", "tensorflow-cpu": "tensorflow[and-cuda]",
                "jax": "jax[cuda12]"}

#: Needed only to build and test here, not to read the book on a GPU box.
LOCAL_ONLY = {"pytest", "setuptools"}

PIN = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


def pins_of_requirements(path):
    """{name: version} of a requirement file, following ``-r`` includes."""
    pins = {}
    for line in path.read_text().splitlines():
        include = re.match(r"^\s*-r\s+(\S+)", line)
        if include:
            pins.update(pins_of_requirements(path.parent / include.group(1)))
        elif match := PIN.match(line):
            pins[match.group(1).lower()] = match.group(2)
    return pins


def pins_of_conda_file(path):
    """{name: version} of the pip section of a conda environment file."""
    spec = yaml.safe_load(path.read_text())
    pip_lists = [item["pip"] for item in spec["dependencies"] if isinstance(item, dict)]
    assert len(pip_lists) == 1, f"{path} needs exactly one pip section"
    return dict(m.groups() for m in map(PIN.match, pip_lists[0]) if m)


@pytest.mark.parametrize("stack", sorted(GPU_FILES))
def test_gpu_environment_matches_the_pins(stack):
    local = pins_of_requirements(REQUIREMENTS / f"{stack}.txt")
    gpu = {name.lower(): version for name, version in pins_of_conda_file(GPU_FILES[stack]).items()}
    tools = pins_of_requirements(REQUIREMENTS / "tools.txt")
    expected = {GPU_BUILD_OF.get(name, name): version for name, version in local.items()
                if name not in LOCAL_ONLY}
    expected["jupytext"] = tools["jupytext"]
    assert gpu == expected


def test_every_framework_has_a_gpu_environment():
    assert {path.stem for path in REQUIREMENTS.glob("*.txt")} - {"common", "tools", "book"} == set(GPU_FILES)
