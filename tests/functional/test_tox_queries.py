"""``tox -e queries`` installs only the linter's dependencies (seconds, not a minute): check that
``check-queries --strict`` really runs with nothing else importable."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

#: Import name of each install_requires distribution.
IMPORT_NAMES = {
    "click": "click", "PyYAML": "yaml", "Jinja2": "jinja2", "regex": "regex", "requests": "requests",
    "elasticsearch": "elasticsearch", "opensearch-py": "opensearchpy", "gerritlib": "gerritlib",
    "paramiko": "paramiko", "irc": "irc", "launchpadlib": "launchpadlib", "python-subunit": "subunit",
    "orjson": "orjson", "python-dateutil": "dateutil", "zstandard": "zstandard",
}


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


@pytest.mark.timeout(120)
def test_queries_env_needs_only_its_deps(tmp_path: Path) -> None:
    tox = _ini(REPO / "tox.ini")["testenv:queries"]
    assert tox["skip_install"].strip() == "true" and "extras" not in tox
    allowed = {_dist(d) for d in tox["deps"].split("\n") if d.strip()}
    required = {_dist(r) for r in _ini(REPO / "setup.cfg")["options"]["install_requires"].split("\n") if r.strip()}
    assert allowed <= required and required <= set(IMPORT_NAMES), "update IMPORT_NAMES"
    assert tox["commands"].strip() == "python -m elastic_recheck check-queries --strict queries"
    blocked = sorted(IMPORT_NAMES[d] for d in required - allowed)
    script = (
        "import importlib.abc, sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError('not installed in tox -e queries: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['elastic-recheck', 'check-queries', '--strict', 'queries']\n"
        "from elastic_recheck.cli.main import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_RECHECK_")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stderr
    assert "0 errors, 0 warnings" in res.stderr + res.stdout
