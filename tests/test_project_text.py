"""The project speaks of the product, never of its making.

README, docs, docstrings, comments, test names, the Makefile, the model card and benchmark
docstrings state what is, with the number and the command that measures it. Wording that tells
the story of the work (numbered sessions or issues of the work, an old value in brackets, what
was attempted before) or cites a notes file outside the repository fails here; see
``HISTORY_PATTERNS``. The patterns are narrow on purpose: "now" as a time stamp in code, "was
moved" or "round 0" are legitimate and pass (see the negative examples below). The positive
examples are written with a ``|`` inside a word so that this file passes its own scan.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: name -> pattern (case-insensitive). Each one is exercised on positive and negative examples.
HISTORY_PATTERNS: dict[str, str] = {
    "numbered_session": r"(?<![a-z])sessions?[ _-]?\d",
    "session_of_the_work": r"\b(this|last|next|previous|earlier|later|each|every) session\b",
    "numbered_issue": r"(?<![a-z])issues?[ _-]?#?\d",
    "issue_phrasing": r"\b(the|no|this|that) issue('s|\s+(states?|asks?|asked|has asked|wants?))\b",
    "numbered_stage": r"\b(phase|milestone|sprint)[ _-]?\d",
    "papers_md_citation": r"\bpapers\.md\b",
    "tried_word": r"\btried\b",
    "first_attempt_word": r"\bfirst attempt\b",
    "past_value": r"\b(was|were) ~?[-+−]?\d",
    "old_value_in_brackets": r"\((was|were|formerly|previously) [^)]*\)",
    "now_as_change": (r"\b(is|are|was|were|model|stage|code|benchmark|pipeline|it|which) now\b"
                        r"|\bnow (uses?|equals?|runs?|gives?|takes?|reads?|writes?|beats?|has|have)\b"
                        r"|(^|[.!?]\s+)now,? (the|it|each|every|this|all|a|an)\b"),
    "no_longer_word": r"\bno longer\b(?! than)",
    "relative_to_a_change": r"\b(before|after|since|until) (the|this|that) (change|fix|rewrite|refactor)\b",
}
_COMPILED = {name: re.compile(p, re.IGNORECASE) for name, p in HISTORY_PATTERNS.items()}

#: Text formats the project writes by hand. Data files (GeoJSON samples, OSM extracts, rasters)
#: and benchmark result files (written by the benchmarks) are not prose of the project.
TEXT_SUFFIXES = {".md", ".py", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".json"}
TEXT_NAMES = {"Makefile"}
DATA_DIRS = ("benchmarks/results/", "tests/data/")


_CONTINUATION = re.compile(r"^\s*(#+|//|\*|>|\"\"\"|\'\'\')?\s*")


def history_hits(text: str) -> list[tuple[int, str, str]]:
    """(line number, pattern name, line) for every line that speaks of the work's history.

    A phrase broken across two lines (prose wrapped at 100 columns, a comment continued on the
    next line) counts on the line where it starts."""
    lines = text.splitlines()
    hits = []
    for i, line in enumerate(lines):
        nxt = _CONTINUATION.sub("", lines[i + 1]) if i + 1 < len(lines) else ""
        joined = line.rstrip() + " " + nxt
        cut = len(line.rstrip())
        for name, pattern in _COMPILED.items():
            if pattern.search(line) or any(m.start() < cut < m.end()
                                           for m in pattern.finditer(joined)):
                hits.append((i + 1, name, line.strip()))
    return hits


def _tracked_files() -> list[str]:
    try:
        # tracked files, and new ones not yet committed (but not those git ignores)
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True)
        return [p for p in out.stdout.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "runs", "demo_output", "__pycache__"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)]


def project_text_files() -> list[str]:
    """Tracked hand-written text files: README, docs, code, tests, Makefile, model card."""
    files = []
    for rel in _tracked_files():
        path = Path(rel)
        if rel.startswith(DATA_DIRS) or path.suffix == ".geojson":
            continue
        if sample_data_file(rel) and path.suffix != ".md":
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            files.append(rel)
    return sorted(files)


def sample_data_file(rel: str) -> bool:
    return rel.startswith("sample_data/")


def _hits_by_file() -> dict[str, list[tuple[int, str, str]]]:
    found = {}
    for rel in project_text_files():
        hits = history_hits((ROOT / rel).read_text(encoding="utf-8", errors="replace"))
        if hits:
            found[rel] = hits
    return found


@pytest.mark.parametrize("text", [
    "Ses|sion 5: the tiling change", "the ses|sion-4 code gave 0.87 px", "def test_ses|sion5_tiles():",
    "since ses|sion 4", "In this ses|sion the default", "(iss|ue 4 §6)", "Floor (iss|ue #4)",
    "where the iss|ue states its floors", "the iss|ue's floors", "no iss|ue has asked for it yet",
    "see pap|ers.md §2", "a full-resolution level was tr|ied: slower", "A tanh MLP (first att|empt)",
    "19 px, w|as 22", "(w|as 1 and 0)", "which the shipped model n|ow uses",
    "so the first stage n|ow equals local alone", "gave other offsets. N|ow the first stage equals",
    "# a wrapped comment: 19 px, w|as\n# 22 before", "is met on both models: the\niss|ue's floor", "Memory is n|ow below the exact search's",
    "scale 0 is no lon|ger in the default", "bef|ore the change the search moved", "pha|se 2 of the work",
])
def test_history_wording_is_found(text):
    text = text.replace("|", "")
    assert history_hits(text), text


@pytest.mark.parametrize("text", [
    "now = time.monotonic()", "if now - self._last_emit < 1.0:", "2 slots available now.",
    "nothing was moved (check that both cover the same area)", "round 0 trains on D0",
    "edges are visible from step 0", "every stage of a composed pipeline runs with its own context",
    "Some geometries were invalid and have been repaired.", "retrying in 2 s (attempt 2 of 4)",
    "what a shipped model was trained on", "no longer than 30 s", "issues with GDAL's error handler",
    "session = requests.Session()", "the first stage equals local alone (tested)",
    "median vertex error 6.20 px -> 1.37 px", "the rows no later tile touches",
    "the map was\n# moved by the field",
])
def test_legitimate_wording_passes(text):
    assert not history_hits(text), history_hits(text)


def test_the_scan_covers_the_project():
    files = set(project_text_files())
    for expected in ("README.md", "Makefile", "geoalign/model/default/model_card.json",
                     "benchmarks/accuracy.py", "tests/test_project_text.py", "cli/main.py"):
        assert expected in files
    assert not any(f.endswith((".tif", ".png", ".geojson")) for f in files)


def test_project_text_speaks_of_the_product_not_its_history():
    found = _hits_by_file()
    lines = [f"{rel}:{n}: [{name}] {line}" for rel, hits in found.items() for n, name, line in hits]
    assert not lines, "history wording:\n" + "\n".join(lines)
