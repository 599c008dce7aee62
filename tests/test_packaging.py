"""pyproject.toml: the runtime dependencies admit every Triton CUDA torch pins and the versions the
compatibility module tests, name numpy, and the package metadata is complete (checked with packaging)."""
from __future__ import annotations

from pathlib import Path

import numpy
import pytest
import triton
from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tilefn.lower import triton_compat

tomllib = pytest.importorskip("tomllib")  # (Python 3.11+)
ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIRES = {r.name: r for r in map(Requirement, PROJECT["dependencies"])}


def test_dependencies_are_requirements_without_markers_or_extras():
    assert all(r.marker is None and not r.extras for r in REQUIRES.values())
    assert {"torch", "triton", "numpy", "attrs", "pyrsistent", "packaging"} <= REQUIRES.keys()


@pytest.mark.parametrize("torch_version, triton_pin", [("2.9", "3.5.0"), ("2.12", "3.7.0"), ("2.13", "3.7.1")])
def test_triton_range_admits_what_cuda_torch_pins(torch_version, triton_pin):
    assert Version(f"{torch_version}.0") in REQUIRES["torch"].specifier
    assert Version(triton_pin) in REQUIRES["triton"].specifier


@pytest.mark.parametrize("version", ["3.4.0", "3.5.0", "3.6.0", "3.7.1", "3.8.0", "3.9.0"])
def test_triton_range_is_the_compat_module_s_tested_range(version):
    admitted = Version(version) in REQUIRES["triton"].specifier
    assert admitted == (triton_compat.untested_message(version) is None)


def test_numpy_is_named_below_2_3_for_the_interpreter():
    assert Version("2.2.6") in REQUIRES["numpy"].specifier and Version("2.3.0") not in REQUIRES["numpy"].specifier


def test_the_installed_versions_satisfy_the_requirements():
    assert Version(triton.__version__) in REQUIRES["triton"].specifier
    assert Version(numpy.__version__) in REQUIRES["numpy"].specifier


def test_metadata():
    assert canonicalize_license_expression(PROJECT["license"]) == PROJECT["license"]
    assert all((ROOT / f).is_file() for f in PROJECT["license-files"])
    assert all(author["name"] for author in PROJECT["authors"])
    assert (ROOT / PROJECT["readme"]).is_file()
    classifiers = PROJECT["classifiers"]
    python = SpecifierSet(PROJECT["requires-python"])
    listed = [c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")]
    assert listed and all(Version(v) in python for v in listed)
    assert not any(c.startswith("License ::") for c in classifiers)  # (PEP 639: the license expression says it)
