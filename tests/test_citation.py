"""Research-project files: CITATION.cff is valid Citation File Format 1.2.0 and agrees with
pyproject.toml; LICENSE is the MIT licence that pyproject.toml and the recipe declare.

``tests/cff/schema-1.2.0.json`` is the format's own JSON schema (draft-07), copied unchanged
from the Citation File Format project (CC-BY-4.0), so the check runs offline.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pyproject_data import read_pyproject

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates CITATION.cff")
yaml = pytest.importorskip("yaml", reason="PyYAML reads CITATION.cff")

REPO = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).resolve().parent / "cff" / "schema-1.2.0.json"


def _citation() -> dict[str, Any]:
    # CFF files are YAML 1.2, where an unquoted date stays a string; PyYAML (YAML 1.1) would
    # make it a date, so quote dates in CITATION.cff (the schema then sees what CFF tools see)
    return yaml.safe_load((REPO / "CITATION.cff").read_text())


def _errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def _project() -> dict[str, Any]:
    return read_pyproject(REPO)["project"]


def test_citation_is_valid_cff_1_2_0() -> None:
    citation = _citation()
    assert citation["cff-version"] == "1.2.0"
    assert _errors(citation) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.pop("authors"), "'authors' is a required property"),
        (lambda c: c.update(license="MIT-ish"), "MIT-ish"),
        (lambda c: c.update({"date-released": "26 Nov 2026"}), "26 Nov 2026"),
        (lambda c: c.update(titel="x"), "Additional properties"),
    ],
)
def test_schema_check_rejects_broken_files(change: Any, expected: str) -> None:
    broken = copy.deepcopy(_citation())
    change(broken)
    assert any(expected in error for error in _errors(broken)), _errors(broken)


def test_citation_agrees_with_pyproject() -> None:
    citation, project = _citation(), _project()
    assert citation["version"] == project["version"]
    assert citation["license"] == project["license"]["text"]
    assert citation["repository-code"] == project["urls"]["Source"]


def test_license_file_is_mit() -> None:
    text = (REPO / "LICENSE").read_text()
    assert _project()["license"]["text"] == "MIT"
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_changelog_has_the_current_version() -> None:
    assert f"## [{_project()['version']}]" in (REPO / "CHANGELOG.md").read_text()
