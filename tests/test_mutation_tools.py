"""tools/cpp_mutants.py: its table stays in step with cpp/ and each mutation applies exactly once.

Building and testing the mutants is `make mutation-cpp` (minutes); this only checks the list.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "cpp_mutants.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("cpp_mutants", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_table_is_well_formed():
    mutants = tool.load_mutants()
    assert mutants, "the C++ mutation list is empty"
    for mutant in mutants:
        assert (REPO / mutant.file).is_file(), mutant.id
        assert mutant.old.strip() and mutant.old != mutant.new, mutant.id
        assert mutant.tests and mutant.why, mutant.id


def test_every_mutation_applies_to_todays_sources():
    """An entry whose old text is gone tests nothing: update tools/cpp_mutants.yaml with cpp/."""
    assert tool.stale_mutants(tool.load_mutants(), REPO) == []


def test_whitespace_runs_match_any_whitespace():
    mutant = tool.Mutant("m", "f", "a = b;  return a;", "return b;", ("t",))
    assert tool.mutate("x\n  a = b;\n      return a;\n}", mutant) == "x\n  return b;\n}"
    assert tool.mutate("a=b; return a;", mutant) is None  # text must match apart from spacing
    assert tool.mutate("a = b; return a; a = b; return a;", mutant) is None  # ambiguous


def test_duplicate_ids_are_refused(tmp_path):
    entry = "- {id: x, file: f, old: a, new: b, tests: [t]}\n"
    table = tmp_path / "table.yaml"
    table.write_text(entry * 2)
    with pytest.raises(ValueError, match="duplicate"):
        tool.load_mutants(table)
