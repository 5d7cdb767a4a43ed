"""The layering of the package: lower stages never reach into the avatar or the evaluation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "signanon"

# package -> packages it must never import
FORBIDDEN = {
    "video": {"avatar", "evaluation", "diffusion", "reenactment", "landmarks", "job", "cli", "batch", "web"},
    "landmarks": {"avatar", "evaluation", "diffusion", "reenactment", "job", "cli", "batch", "web"},
    "reenactment": {"avatar", "evaluation", "diffusion", "job", "batch", "web"},
    "diffusion": {"avatar", "evaluation", "job", "batch", "web"},
    "avatar": {"evaluation", "diffusion", "reenactment", "job", "batch", "web"},
    "evaluation": {"avatar", "diffusion", "reenactment", "job", "batch", "web"},
}


def imported_packages(path: Path, package: str) -> set[str]:
    """First-level signanon sub-packages/modules imported by one file (absolute or relative)."""
    found = set()
    tree = ast.parse(path.read_text())
    depth_of_file = len(path.relative_to(SRC).parts) - 1  # 1 for signanon/<pkg>/x.py
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "signanon" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "signanon" and len(parts) > 1:
                    found.add(parts[1])
            elif node.level > depth_of_file:  # reaches above its own package: ..x from signanon/pkg/
                target = (node.module or "").split(".")[0] if node.module else None
                names = [target] if target else [a.name for a in node.names]
                found.update(n for n in names if n)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_stages_do_not_import_upper_ones(package):
    offenders = []
    for path in sorted((SRC / package).rglob("*.py")):
        bad = imported_packages(path, package) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert offenders == []


def test_the_checker_sees_relative_imports():
    bad = imported_packages(SRC / "cli" / "anonymize.py", "cli")
    assert {"job", "config", "progress"} <= bad


def test_the_shared_face_recogniser_reaches_into_no_stage():
    # signanon/recognition.py sits below every stage: the privacy checks inside reenactment and
    # diffusion and the evaluation all use it
    stages = {"video", "landmarks", "avatar", "evaluation", "diffusion", "reenactment", "job", "cli", "batch", "web"}
    assert imported_packages(SRC / "recognition.py", "recognition") & stages == set()
    assert "errors" in imported_packages(SRC / "recognition.py", "recognition")  # the checker reads it
