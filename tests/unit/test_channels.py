"""Channel config (old recheckwatchbot.yaml) and IRC message routing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from elastic_recheck.core import config as er_config
from elastic_recheck.core.channels import (
    BugRef,
    ChannelConfig,
    IrcEvent,
    Messages,
    channel_config_from_config,
    clean_text,
    load_channel_config,
    parse_channel_config,
    route,
)
from elastic_recheck.core.errors import ConfigError

# The shape of the recheckwatchbot.yaml shipped with the old tool.
OLD_YAML = """\
channels:
    openstack-nova:
      projects:
        - nova
      events:
        - positive
    openstack-glance:
      projects:
        - glance
      events:
        - positive
    openstack-qa:
      projects:
        - all
      events:
        - positive
        - negative
messages:
  # | means don't fold newlines, > means do
  found_bug: |
    I noticed Zuul failed, I think you hit bug(s):

    %(bugs)s
  footer: >-
    For more details on this and other bugs, please see
    http://status.openstack.org/elastic-recheck/
  recheck_instructions: >-
    If you believe we've correctly identified the failure, feel free to leave a 'recheck'
    comment to run the tests again.
  unrecognized: >-
    Some of the tests failed in a way that we did not understand.
  no_bugs_found: >-
    I noticed Zuul failed, refer to:
    https://docs.opendev.org/opendev/infra-manual/latest/developers.html#automated-testing
"""

NOVA_BUG = BugRef("1253896", "https://bugs.launchpad.net/bugs/1253896", "Attempts to verify guests are running fail",
                  ("nova",))
GLANCE_BUG = BugRef("1367021", "https://bugs.launchpad.net/bugs/1367021", "glance image upload times out",
                    ("openstack/glance",))
NEUTRON_BUG = BugRef("1500000", "https://bugs.launchpad.net/bugs/1500000", None, ("neutron",))
URL = "https://review.opendev.org/c/openstack/nova/+/812345"


@pytest.fixture
def cfg() -> ChannelConfig:
    return parse_channel_config(yaml.safe_load(OLD_YAML))


def test_old_file_loads_without_mutating_input() -> None:
    data = yaml.safe_load(OLD_YAML)
    before = copy.deepcopy(data)
    cfg = parse_channel_config(data)
    assert data == before  # the old tool renamed keys in place (RuntimeError on Python 3)
    assert cfg.names == ["#openstack-nova", "#openstack-glance", "#openstack-qa"]
    qa = cfg.channels[2]
    assert qa.events == {"positive", "negative"}
    assert qa.projects == {"all"}
    assert cfg.messages.footer.endswith("http://status.openstack.org/elastic-recheck/")
    assert "%(bugs)s" in cfg.messages.found_bug
    assert cfg.messages.unrecognized == "Some of the tests failed in a way that we did not understand."


def test_load_from_file_and_config(tmp_path: Path) -> None:
    path = tmp_path / "recheckwatchbot.yaml"
    path.write_text(OLD_YAML, encoding="utf-8")
    assert load_channel_config(path).names[0] == "#openstack-nova"
    conf = er_config.from_mapping(
        {"ircbot": {"channel_config": str(path)}, "recheckwatch": {"irc_pipelines": "gate, post"}}
    )
    cfg = channel_config_from_config(conf)
    assert cfg.irc_pipelines == {"gate", "post"}
    assert len(cfg.channels) == 3


def test_separate_messages_file_overrides(tmp_path: Path) -> None:
    chan = tmp_path / "channels.yaml"
    chan.write_text("channels:\n  '#qa': {projects: [all], events: [negative]}\n", encoding="utf-8")
    msgs = tmp_path / "messages.yaml"
    msgs.write_text("messages:\n  footer: see the dashboard\n", encoding="utf-8")
    conf = er_config.from_mapping({"ircbot": {"channel_config": str(chan)}, "recheckwatch": {"messages": str(msgs)}})
    cfg = channel_config_from_config(conf)
    assert cfg.messages.footer == "see the dashboard"
    assert cfg.messages.found_bug == Messages().found_bug  # default kept
    assert cfg.names == ["#qa"]


def test_no_channel_config_means_no_channels() -> None:
    cfg = channel_config_from_config(er_config.from_mapping({}))
    assert cfg.channels == ()
    assert cfg.messages == Messages()
    event = IrcEvent("negative", "openstack/nova", URL, "gate", {"tempest-full": []})
    assert route(cfg, event) == []


def test_pre_hierarchy_format_and_hash_names() -> None:
    cfg = parse_channel_config({"openstack-qa": {"events": ["negative"]}, "#infra": {"projects": ["all"],
                                                                                     "events": ["positive"]}})
    assert cfg.names == ["#openstack-qa", "#infra"]


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"channels": {"qa": {"events": ["postive"]}}}, "unknown event kind"),
        ({"channels": {"qa": {"events": []}, "#qa": {"events": []}}}, "listed twice"),
        ({"channels": ["qa"]}, "must be a mapping"),
        ({"channels": {"qa": {"projects": {"nova": 1}}}}, "list of names"),
        ({"channels": {}, "messages": {"footer": 3}}, "must be a string"),
    ],
)
def test_invalid_configs(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_channel_config(data)


def test_positive_goes_to_matching_projects_and_all(cfg: ChannelConfig) -> None:
    event = IrcEvent("positive", "openstack/nova", URL, "gate",
                     {"tempest-full": [NOVA_BUG], "nova-multinode": [NOVA_BUG, GLANCE_BUG]})
    out = route(cfg, event)
    channels = [c for c, _ in out]
    # glance matches by last path component of the fingerprint's 'openstack/glance'
    assert channels == ["#openstack-nova", "#openstack-glance", "#openstack-qa"]
    messages = {m for _, m in out}
    assert len(messages) == 1
    assert messages.pop() == (
        f"openstack/nova change: {URL} failed because of: "
        "tempest-full: https://bugs.launchpad.net/bugs/1253896 (Attempts to verify guests are running fail), "
        "nova-multinode: https://bugs.launchpad.net/bugs/1253896 (Attempts to verify guests are running fail), "
        "nova-multinode: https://bugs.launchpad.net/bugs/1367021 (glance image upload times out)"
    )


def test_positive_for_unfollowed_project_only_reaches_all(cfg: ChannelConfig) -> None:
    event = IrcEvent("positive", "openstack/neutron", URL, "gate", {"neutron-tempest": [NEUTRON_BUG]})
    out = route(cfg, event)
    expected = f"openstack/neutron change: {URL} failed because of: neutron-tempest: https://bugs.launchpad.net/bugs/1500000"
    assert out == [("#openstack-qa", expected)]


def test_negative_and_timeout_go_to_negative_subscribers(cfg: ChannelConfig) -> None:
    event = IrcEvent("negative", "openstack/nova", URL, "gate",
                     {"tempest-full": [NOVA_BUG], "nova-grenade": [], "nova-ceph": []})
    assert route(cfg, event) == [(
        "#openstack-qa",
        f"openstack/nova change: {URL} failed nova-grenade, nova-ceph in the gate queue with an unrecognized error",
    )]
    timeout = IrcEvent("timeout", "openstack/nova", URL, "gate", {"tempest-full": []})
    out = route(cfg, timeout)
    assert [c for c, _ in out] == ["#openstack-qa"]
    assert URL in out[0][1] and "tempest-full" in out[0][1] and "not indexed" in out[0][1]


def test_other_pipelines_are_not_posted(cfg: ChannelConfig) -> None:
    for kind in ("positive", "negative", "timeout"):
        event = IrcEvent(kind, "openstack/nova", URL, "check", {"tempest-full": [NOVA_BUG]})  # type: ignore[arg-type]
        assert route(cfg, event) == []


def test_untrusted_text_cannot_inject_irc_commands(cfg: ChannelConfig) -> None:
    evil = BugRef("1", "https://bugs.launchpad.net/bugs/1", "title\r\nQUIT :bye\x00\x01ACTION", ("nova",))
    event = IrcEvent("positive", "openstack/nova", URL, "gate", {"job\nJOIN #x": [evil]})
    for _, message in route(cfg, event):
        assert "\r" not in message and "\n" not in message and "\x00" not in message and "\x01" not in message
        assert "QUIT :bye" in message  # text kept, on one line
    assert clean_text("bold \x02kept\x02") == "bold \x02kept\x02"
