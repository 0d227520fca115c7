"""The import contract (``.importlinter``, docs/architecture.md) holds and CI checks it.

``tox`` runs ``lint-imports`` in its ``imports`` environment (part of the
default envlist, which is what the README's test command and ``.ci/run``
run); this test runs the same check from pytest and pins what the contract
must say, so that it cannot be weakened by accident.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

#: What issue 16 asks of the core: no adapter, use case, CLI, nor I/O library.
CORE_FORBIDDEN = {
    "elastic_recheck.adapters", "elastic_recheck.bot", "elastic_recheck.ingest", "elastic_recheck.collect",
    "elastic_recheck.report", "elastic_recheck.contrib", "elastic_recheck.cli",
    "sqlite3", "requests", "paramiko", "irc", "jinja2", "click", "launchpadlib", "elasticsearch", "opensearchpy",
}


def _ini(path: os.PathLike[str] | str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def _lines(value: str) -> list[str]:
    return [ln.strip() for ln in value.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_tox_runs_the_contract_by_default() -> None:
    tox = _ini(REPO / "tox.ini")
    envlist = [e.strip() for e in tox["tox"]["envlist"].split(",")]
    assert "imports" in envlist
    env = tox["testenv:imports"]
    assert env["commands"].strip() == "lint-imports --no-cache .importlinter"
    assert any(d.strip().startswith("import-linter") for d in env["deps"].splitlines())


def test_the_contract_says_what_the_architecture_needs() -> None:
    cfg = _ini(REPO / ".importlinter")
    assert cfg["importlinter"]["root_package"].strip() == "elastic_recheck"
    assert cfg["importlinter"]["include_external_packages"].strip() == "True"
    contracts = {s.split(":", 2)[2]: cfg[s] for s in cfg.sections() if s.startswith("importlinter:contract:")}
    core = contracts["core-is-pure"]
    assert core["type"].strip() == "forbidden"
    assert _lines(core["source_modules"]) == ["elastic_recheck.core"]
    assert CORE_FORBIDDEN <= set(_lines(core["forbidden_modules"]))
    assert core.get("allow_indirect_imports", "False").strip() != "True"
    adapters = contracts["adapters-independent"]
    assert adapters["type"].strip() == "independence"
    assert _lines(adapters["modules"]) == ["elastic_recheck.adapters.*"]
    layers = contracts["layers"]
    assert layers["type"].strip() == "layers" and layers["exhaustive"].strip() == "True"
    order = _lines(layers["layers"])
    assert order[0] == "cli" and order[-1] == "core"
    assert order.index("adapters") < order.index("ports") < order.index("core")
    assert contracts["acyclic"]["type"].strip() == "acyclic_siblings"
    assert _lines(contracts["acyclic"]["ancestors"]) == ["elastic_recheck.*"]
    # nothing is silenced wholesale: an ignored import names one module on each side
    for contract in contracts.values():
        for line in _lines(contract.get("ignore_imports", "")):
            importer, imported = (side.strip() for side in line.split("->"))
            assert "*" not in importer and "*" not in imported, line


@pytest.mark.timeout(120)
def test_the_code_keeps_the_contract() -> None:
    pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e .[test]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_RECHECK_")}
    env["PYTHONPATH"] = str(REPO)
    script = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True, no_logo=True))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=100)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in res.stdout, res.stdout[-2000:]
