"""The typed section views are the settings table: types, names and conversions."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from elastic_recheck.core.config import SECTIONS, SETTINGS, Config, from_mapping
from elastic_recheck.core.errors import ConfigError


def test_each_field_type_is_its_default_type() -> None:
    for section, view in SECTIONS.items():
        hints = typing.get_type_hints(view)
        for f in dataclasses.fields(view):
            assert hints[f.name] is type(f.default), f"[{section}] {f.name}"


def test_config_has_one_typed_view_per_section() -> None:
    cfg = Config()
    for section, view in SECTIONS.items():
        assert typing.get_type_hints(getattr(Config, section).func)["return"] is view
        assert isinstance(getattr(cfg, section), view)
    assert [(s.section, s.key) for s in SETTINGS if s.attr != s.key] == [("ircbot", "pass")]


def test_ini_key_that_is_a_python_keyword() -> None:
    cfg = from_mapping({"ircbot": {"pass": "nickserv-secret"}})
    assert cfg.ircbot.password == "nickserv-secret" == cfg.value(next(s for s in SETTINGS if s.key == "pass"))
    assert "nickserv-secret" not in repr(cfg.ircbot)  # secret fields stay out of the view's repr
    assert cfg.redacted()["ircbot"]["pass"] == "***"


def test_views_read_text_and_python_values_as_the_setting_type() -> None:
    cfg = from_mapping({
        "gerrit": {"port": "29419", "host": "review.example.org"},
        "ircbot": {"port": 7000, "ssl": "yes"},
        "zuul": {"timeout": 7, "promote": 1, "url": None},
        "site": {"suggestions": "off"},
    })
    assert (cfg.gerrit.port, cfg.gerrit.host, cfg.gerrit.user) == (29419, "review.example.org", "")
    assert (cfg.ircbot.port, cfg.ircbot.ssl) == (7000, True)
    assert cfg.zuul.timeout == 7.0 and isinstance(cfg.zuul.timeout, float)
    assert cfg.zuul.promote is True
    assert cfg.zuul.url == ""  # None: the default
    assert cfg.site.suggestions is False
    for s in SETTINGS:
        assert cfg.value(s) == getattr(getattr(cfg, s.section), s.attr)


@pytest.mark.parametrize(("section", "values", "message"), [
    ("gerrit", {"port": "ssh"}, "[gerrit] port: invalid literal for int() with base 10: 'ssh'"),
    ("zuul", {"timeout": [1]}, "[zuul] timeout: float() argument must be a string or a real number, not 'list'"),
    ("site", {"suggestions": "perhaps"}, "[site] suggestions: not a boolean: 'perhaps'"),
])
def test_a_value_of_the_wrong_type_is_one_config_error(section: str, values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({section: values})
    assert str(err.value) == message


def test_no_stringly_typed_reads() -> None:
    # Settings are read through the typed views only: no Config.get(section, key) returning Any.
    assert not hasattr(Config(), "get")
    assert Config().gerrit.host == "review.opendev.org"
