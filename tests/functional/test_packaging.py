"""The version comes from git tags (setuptools-scm), with a fallback outside git."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.packaging import cannot_build, copy_checkout

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def _wheel_version(src: Path, out: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETUPTOOLS_SCM")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, env=env, timeout=300)
    (wheel,) = out.glob("elastic_recheck-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
        assert any(n.endswith("share/elastic-recheck/sample/logs.jsonl.gz") for n in names)
        assert any(n.endswith("share/elastic-recheck/queries/1893618.yaml") for n in names)
        assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    return next(ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Version:"))


def _git(src: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=src, check=True,
                   capture_output=True)


def test_version_from_the_git_tag_and_the_fallback(tmp_path: Path) -> None:
    why = cannot_build()
    if why:
        pytest.skip(why)
    src = copy_checkout(tmp_path / "src")
    assert _wheel_version(src, tmp_path / "no-git") == "0.0.0"  # a tree without git: the fallback
    _git(src, "init", "-q")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "release")
    _git(src, "tag", "2.3.4")
    assert _wheel_version(src, tmp_path / "tagged") == "2.3.4"
    (src / "NEWS").write_text("after the release\n")
    _git(src, "add", "NEWS")
    _git(src, "commit", "-q", "-m", "after")
    assert _wheel_version(src, tmp_path / "after").startswith("2.3.5.dev1+g")
