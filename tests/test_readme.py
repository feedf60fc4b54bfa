"""The READMEs are executed: every shell and Python block of README.md and bench/README.md runs.

Blocks are read with pytest-codeblocks' parser, so its marker convention holds: an HTML comment
``<!--pytest.mark.skip(reason="...")-->`` on the line before a block skips it. Such a block must
also say so visibly: its first line is the comment ``# not run by the tests: <the same reason>``
(a GPU, a conda channel, a SLURM cluster, the full main job, a network download).
Diagrams and other non-code blocks are fenced as ``text``. ``test_every_block_is_run_or_marked``
holds every block to this.

pytest-codeblocks' own runner (``pytest --codeblocks``) is not used for the shell blocks: it runs
them in the checkout (writing there), does not stop at a failing command inside a block and
reports only the exit status. Here each runnable block runs in a fresh clone-like copy of the
checkout (``workflow_utils.make_workflow_dir`` plus ``bench/``) in the system temp directory,
``bash`` blocks with ``bash -euo pipefail``, ``python`` blocks with this interpreter, with this
environment's ``bin/`` first on PATH and the copy first on PYTHONPATH. The copy's ``data/mnist``
holds small synthetic IDX files standing in for the downloaded MNIST (``load_split`` reads them;
commands that verify the official MD5 sums are marked as needing the download). Caches go to
the temp directory too, and a test checks that running the blocks left the checkout as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_codeblocks import extract_from_file
from workflow_utils import REPO_ROOT, make_workflow_dir

READMES = ("README.md", "bench/README.md")
RUN = ("bash", "python")
NOT_CODE = ("text",)
NOTE = "# not run by the tests: "
SKIP_MARK = re.compile(r'pytest\.mark\.skip\(reason="(?P<reason>[^"]+)"\)')
BLOCK_TIMEOUT_S = 600
#: Files a run may create in the checkout without writing to it on purpose.
NOISE = ("__pycache__/", ".pytest_cache/", ".hypothesis/", ".pyc")


@dataclass(frozen=True)
class Block:
    readme: str
    line: int
    syntax: str
    code: str
    marks: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.readme}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        reasons = [m.group("reason") for m in map(SKIP_MARK.fullmatch, self.marks) if m]
        return reasons[0] if reasons else None


def readme_blocks() -> list[Block]:
    """Every fenced block of the READMEs, in order."""
    return [
        Block(readme, b.lineno, b.syntax or "", b.code, tuple(b.marks))
        for readme in READMES
        for b in extract_from_file(REPO_ROOT / readme)
    ]


BLOCKS = readme_blocks()
RUNNABLE = [b for b in BLOCKS if b.syntax in RUN]


def test_the_readmes_have_runnable_blocks() -> None:
    assert {b.readme for b in RUNNABLE if b.skip_reason is None} == set(READMES)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_every_block_is_run_or_marked(block: Block) -> None:
    """A block is code that runs, code that is visibly marked as not run, or not code."""
    allowed = RUN + NOT_CODE
    assert block.syntax in allowed, f"{block.id}: fence info {block.syntax!r}, not one of {allowed}"
    first_line = block.code.splitlines()[0] if block.code else ""
    if block.syntax in NOT_CODE:
        assert not block.marks, f"{block.id}: a {block.syntax} block is never run; drop the mark"
        return
    assert all(SKIP_MARK.fullmatch(m) for m in block.marks), (
        f'{block.id}: the only mark is pytest.mark.skip(reason="..."), got {block.marks}'
    )
    reason = block.skip_reason
    if reason is None:
        assert not first_line.startswith(NOTE), f"{block.id}: says it is not run but has no mark"
    else:
        assert first_line == NOTE + reason, (
            f"{block.id}: a skipped block starts with the visible note {NOTE + reason!r}"
        )


def _checkout_state() -> set[str] | None:
    """Untracked, ignored and modified paths of the checkout (None outside a git checkout)."""
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=matching", "--untracked-files=all"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {line for line in done.stdout.splitlines() if not any(n in line for n in NOISE)}


@pytest.fixture(scope="module")
def checkout_before() -> set[str] | None:
    return _checkout_state()


@pytest.fixture
def block_dir(tmp_path: Path) -> Path:
    """A clone-like copy of the checkout with synthetic MNIST in data/mnist."""
    root = make_workflow_dir(tmp_path / "checkout")
    shutil.copytree(
        REPO_ROOT / "bench", root / "bench", ignore=shutil.ignore_patterns("results", "__pycache__")
    )
    shutil.copytree(root / "data" / "synthetic-source", root / "data" / "mnist")
    return root


def _block_env(root: Path, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(root)
    env["XDG_CACHE_HOME"] = str(scratch / "cache")
    env["MPLCONFIGDIR"] = str(scratch / "matplotlib")
    return env


def run_block(block: Block, root: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    """Run ``block`` in the checkout copy ``root`` (``scratch``: its script and caches)."""
    script = scratch / ("block.sh" if block.syntax == "bash" else "block.py")
    script.write_text(block.code, encoding="utf-8")
    interpreter = ["bash", "-euo", "pipefail"] if block.syntax == "bash" else [sys.executable]
    return subprocess.run(
        [*interpreter, str(script)],
        cwd=root,
        env=_block_env(root, scratch),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``root``, by path relative to it."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _not_ignored(paths: list[str]) -> list[str]:
    """Those of ``paths`` (relative to the checkout) that its .gitignore does not ignore."""
    if not paths or shutil.which("git") is None:
        return []
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REPO_ROOT,
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: none ignored
    return sorted(set(paths) - set(done.stdout.splitlines()))


@pytest.mark.parametrize(
    ("code", "status"),
    [("true\n", 0), ("false\ntrue\n", 1), ("false | true\n", 1), ("echo $UNSET_VAR\n", 1)],
)
def test_a_block_stops_at_its_first_failing_command(tmp_path: Path, code: str, status: int) -> None:
    block = Block("README.md", 1, "bash", code, ())
    assert run_block(block, tmp_path, tmp_path).returncode == status


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_written_files_check_sees_the_repository_root() -> None:
    assert _not_ignored(["model.pt", "results/api/model.pt", "data/mnist/x"]) == ["model.pt"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "block",
    [
        pytest.param(
            b, marks=[pytest.mark.skip(reason=f"{b.id}: {b.skip_reason}")] if b.skip_reason else []
        )
        for b in RUNNABLE
    ],
    ids=[b.id for b in RUNNABLE],
)
def test_block_runs(block: Block, block_dir: Path, tmp_path: Path, checkout_before) -> None:
    """The block succeeds, writes only where git ignores and leaves the checkout alone."""
    before = _files(block_dir)
    done = run_block(block, block_dir, tmp_path)
    assert done.returncode == 0, (
        f"{block.id} exited {done.returncode}\n--- block ---\n{block.code}"
        f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
    )
    after = _files(block_dir)
    written = [path for path, stat in after.items() if before.get(path) != stat]
    written += sorted(before.keys() - after.keys())  # removed
    assert _not_ignored(written) == [], f"{block.id} wrote files that git does not ignore"
    assert _checkout_state() == checkout_before, f"{block.id} wrote into the checkout"
