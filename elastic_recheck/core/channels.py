"""IRC channel configuration and message formatting (pure: no I/O but loading YAML).

The file format is the old ``recheckwatchbot.yaml``::

    channels:
      openstack-nova:            # with or without the leading '#'
        projects: [nova]         # 'all' = every project
        events: [positive]
      openstack-qa:
        projects: [all]
        events: [positive, negative]
    messages:                    # texts of the Gerrit comment (see Messages)
      found_bug: |
        I noticed Zuul failed, I think you hit bug(s):

        %(bugs)s
      ...

A file without the ``channels:`` key (the pre-hierarchy format, channel
names at the top level) is accepted too.

Routing (:func:`route`):

* only events from the configured IRC pipelines (``[recheckwatch]
  irc_pipelines``, default ``gate``) are posted; the rest are spam;
* ``positive`` (every failed voting job matched a known bug) goes to the
  channels subscribed to ``positive`` whose ``projects`` contain ``all`` or a
  project affected by one of the matched bugs;
* ``negative`` (an unrecognized failure) and ``timeout`` (the build's logs
  were not indexed in time) go to the channels subscribed to ``negative``.

Projects are compared case-insensitively on their last path component, so a
channel entry ``nova`` matches a Launchpad target ``nova`` and a fingerprint's
Gerrit-style ``openstack/nova`` (and vice versa).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from elastic_recheck.core.errors import ConfigError

if TYPE_CHECKING:
    from elastic_recheck.core.config import Config

LOG = logging.getLogger(__name__)

EVENT_KINDS: frozenset[str] = frozenset({"positive", "negative"})
ALL_PROJECTS = "all"
DEFAULT_PIPELINES: tuple[str, ...] = ("gate",)

EventKind = Literal["positive", "negative", "timeout"]

# CR, LF and NUL end or corrupt an IRC line; other C0 controls (except the
# formatting codes people use on purpose) are replaced too. Bug titles come
# from the tracker and job names from Gerrit events: both are untrusted.
_CONTROL_RE = re.compile(r"[\x00-\x01\x04-\x0e\x10-\x1c\x7f\r\n]+")


def clean_text(text: str) -> str:
    """``text`` on one line: control characters (CR, LF, NUL, ...) become a space."""
    return _CONTROL_RE.sub(" ", text)


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: its name (always with the ``#``), projects and event kinds."""

    name: str
    projects: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()

    def wants_project(self, projects: Iterable[str]) -> bool:
        """True if the channel follows ``all`` or one of ``projects``."""
        mine = {_project_key(p) for p in self.projects}
        if ALL_PROJECTS in mine:
            return True
        return any(_project_key(p) in mine for p in projects)


def _project_key(project: str) -> str:
    return project.strip().rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class Messages:
    """Texts of the Gerrit review comment (``messages:`` of recheckwatchbot.yaml).

    ``found_bug`` contains ``%(bugs)s``, replaced by the list of matched bugs.
    """

    found_bug: str = "I noticed Zuul failed, I think you hit bug(s):\n\n%(bugs)s\n"
    recheck_instructions: str = (
        "If you believe we've correctly identified the failure, feel free to leave a 'recheck' "
        "comment to run the tests again."
    )
    unrecognized: str = (
        "Some of the tests failed in a way that we did not understand. Please help us classify "
        "these issues so that they can be part of Elastic Recheck."
    )
    footer: str = "For more details on this and other bugs, please see the elastic-recheck status page."
    no_bugs_found: str = "I noticed Zuul failed, refer to the CI documentation of your project."

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, source: str = "messages") -> Messages:
        """Defaults overridden by the known keys of ``data``; unknown keys are warned about."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: 'messages' must be a mapping")
        known = set(cls.__dataclass_fields__)
        values: dict[str, str] = {}
        for key, value in data.items():
            if key not in known:
                LOG.warning("%s: unknown message %r (ignored)", source, key)
                continue
            if not isinstance(value, str):
                raise ConfigError(f"{source}: message {key!r} must be a string")
            values[str(key)] = value
        if "found_bug" in values and "%(bugs)s" not in values["found_bug"]:
            LOG.warning("%s: message 'found_bug' has no %%(bugs)s placeholder", source)
        return cls(**values)


@dataclass(frozen=True)
class ChannelConfig:
    """Channels, the Gerrit comment texts and the pipelines that go to IRC."""

    channels: tuple[ChannelSpec, ...] = ()
    messages: Messages = field(default_factory=Messages)
    irc_pipelines: frozenset[str] = frozenset(DEFAULT_PIPELINES)

    @property
    def names(self) -> list[str]:
        """The channels to join, in file order."""
        return [c.name for c in self.channels]

    def subscribed(self, kind: str) -> list[ChannelSpec]:
        return [c for c in self.channels if kind in c.events]


def channel_name(name: str) -> str:
    """``openstack-qa`` -> ``#openstack-qa``; names with a channel prefix are kept."""
    name = str(name).strip()
    if not name:
        raise ConfigError("empty channel name")
    if name[0] in "#&+!":
        return name
    return "#" + name


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ConfigError(f"{what} must be a list of names")
    return [str(v) for v in value]


def parse_channel_config(
    data: Mapping[str, Any] | None,
    irc_pipelines: Iterable[str] = DEFAULT_PIPELINES,
    source: str = "channel config",
    messages: Messages | None = None,
) -> ChannelConfig:
    """Validate a loaded recheckwatchbot.yaml document.

    Builds new objects; the input mapping is never modified.

    :raises ConfigError: on a malformed document, an unknown event kind or a
        channel listed twice (``qa`` and ``#qa``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping")
    if "channels" in data:
        raw_channels = data["channels"] or {}
    else:  # pre-hierarchy format: channels at the top level
        raw_channels = {k: v for k, v in data.items() if k != "messages"}
    if not isinstance(raw_channels, Mapping):
        raise ConfigError(f"{source}: 'channels' must be a mapping of channel name to settings")
    specs: list[ChannelSpec] = []
    seen: set[str] = set()
    for raw_name, settings in raw_channels.items():
        name = channel_name(str(raw_name))
        if name.lower() in seen:
            raise ConfigError(f"{source}: channel {name} is listed twice")
        seen.add(name.lower())
        settings = settings or {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{source}: channel {name}: expected projects/events")
        events = _str_list(settings.get("events"), f"{source}: channel {name}: events")
        unknown = sorted(set(events) - EVENT_KINDS)
        if unknown:
            raise ConfigError(
                f"{source}: channel {name}: unknown event kind(s) {', '.join(unknown)} "
                f"(use positive, negative)"
            )
        projects = _str_list(settings.get("projects"), f"{source}: channel {name}: projects")
        if "positive" in events and not projects:
            LOG.warning("%s: channel %s wants positive events but lists no projects", source, name)
        specs.append(ChannelSpec(name=name, projects=frozenset(projects), events=frozenset(events)))
    if messages is None:
        messages = Messages.from_mapping(data.get("messages"), source)
    return ChannelConfig(
        channels=tuple(specs),
        messages=messages,
        irc_pipelines=frozenset(p.strip() for p in irc_pipelines if p.strip()),
    )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


def load_channel_config(
    path: str | Path,
    irc_pipelines: Iterable[str] = DEFAULT_PIPELINES,
    messages_path: str | Path | None = None,
) -> ChannelConfig:
    """Read a recheckwatchbot.yaml; ``messages_path`` (if given) supplies ``messages:``."""
    p = Path(path).expanduser()
    data = _read_yaml(p)
    messages = load_messages(messages_path) if messages_path else None
    return parse_channel_config(data, irc_pipelines=irc_pipelines, source=str(p), messages=messages)


def load_messages(path: str | Path | None) -> Messages:
    """The ``messages:`` block of a YAML file, or the defaults when ``path`` is empty."""
    if not path:
        return Messages()
    p = Path(path).expanduser()
    data = _read_yaml(p)
    if data is None:
        return Messages()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{p}: expected a mapping with a 'messages' key")
    return Messages.from_mapping(data.get("messages"), str(p))


def channel_config_from_config(config: Config) -> ChannelConfig:
    """From ``[ircbot] channel_config``, ``[recheckwatch] messages`` and ``irc_pipelines``.

    Without a channel config there are no channels (IRC posts nothing) but the
    messages still load.
    """
    pipelines = [p.strip() for p in config.recheckwatch.irc_pipelines.split(",") if p.strip()]
    messages_path = config.recheckwatch.messages or None
    path = config.ircbot.channel_config
    if not path:
        return ChannelConfig(messages=load_messages(messages_path), irc_pipelines=frozenset(pipelines))
    return load_channel_config(path, irc_pipelines=pipelines, messages_path=messages_path)


# --- events and messages ---------------------------------------------------


@dataclass(frozen=True)
class BugRef:
    """A matched bug as shown on IRC."""

    bug: str
    url: str
    title: str | None = None
    projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignatureRef:
    """The failure signature of an unrecognized job, for the negative notice."""

    #: Short id of the signature (its key).
    key: str
    #: The error line that stands for it.
    line: str
    #: Builds that failed with it in the window, this one included.
    seen: int
    hours: float = 24.0


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st``..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class IrcEvent:
    """What the bot wants to tell IRC about one failed change.

    ``jobs`` maps each failed voting job to the bugs it matched (empty for an
    unrecognized failure), in the order the bot wants them shown.

    * ``positive``: every failed job matched at least one bug;
    * ``negative``: at least one failed job matched nothing;
    * ``timeout``: the logs of ``jobs`` were not indexed in time.
    """

    kind: EventKind
    project: str
    change_url: str
    pipeline: str
    jobs: Mapping[str, Sequence[BugRef]] = field(default_factory=dict)
    #: Unrecognized jobs -> their failure signature (negative events).
    signatures: Mapping[str, SignatureRef] = field(default_factory=dict)

    def affected_projects(self) -> set[str]:
        return {p for refs in self.jobs.values() for ref in refs for p in ref.projects}


def format_positive(event: IrcEvent) -> str:
    """``<project> change: <url> failed because of: <job>: <bug url> (<title>), ...``"""
    parts: list[str] = []
    for job, refs in event.jobs.items():
        for ref in refs:
            item = f"{job}: {ref.url}"
            if ref.title:
                item += f" ({ref.title})"
            parts.append(item)
    return clean_text(f"{event.project} change: {event.change_url} failed because of: {', '.join(parts)}")


def format_negative(event: IrcEvent) -> str:
    """``<project> change: <url> failed <job>, <job> in the <pipeline> queue with an unrecognized error``

    Lists the jobs that matched no bug (all failed jobs if every job matched).
    """
    jobs = [job for job, refs in event.jobs.items() if not refs] or list(event.jobs)
    text = (
        f"{event.project} change: {event.change_url} failed {', '.join(jobs)} "
        f"in the {event.pipeline} queue with an unrecognized error"
    )
    # Each signed job: its signature, its error line and the cluster's size.
    notes = []
    for job in jobs:
        sig = event.signatures.get(job)
        if sig is None or not sig.key:
            continue
        line = sig.line if len(sig.line) <= 100 else sig.line[:97] + "..."
        who = f"{job} " if len(jobs) > 1 else ""
        notes.append(f"{who}signature {sig.key[:8]} \"{line}\", {ordinal(sig.seen)} time in {sig.hours:g} h")
    if notes:
        text += " (" + "; ".join(notes) + ")"
    return clean_text(text)


def format_timeout(event: IrcEvent) -> str:
    """The readiness-timeout message (logs never indexed, so no classification)."""
    jobs = ", ".join(event.jobs) or "its jobs"
    return clean_text(
        f"{event.project} change: {event.change_url} failed {jobs} in the {event.pipeline} queue, "
        f"but the logs were not indexed in time to classify the failure"
    )


def format_message(event: IrcEvent) -> str:
    if event.kind == "positive":
        return format_positive(event)
    if event.kind == "negative":
        return format_negative(event)
    if event.kind == "timeout":
        return format_timeout(event)
    raise ValueError(f"unknown IRC event kind {event.kind!r}")


def route(config: ChannelConfig, event: IrcEvent) -> list[tuple[str, str]]:
    """The ``(channel, message)`` pairs to post for ``event`` (possibly none)."""
    if event.pipeline not in config.irc_pipelines:
        LOG.debug("not posting %s to IRC: pipeline %s is not in %s", event.change_url,
                  event.pipeline, sorted(config.irc_pipelines))
        return []
    if event.kind == "positive":
        affected = event.affected_projects()
        targets = []
        for spec in config.subscribed("positive"):
            if spec.wants_project(affected):
                targets.append(spec.name)
            else:
                LOG.info("not posting %s to %s: the bugs do not target its projects",
                         event.change_url, spec.name)
    elif event.kind in ("negative", "timeout"):
        targets = [spec.name for spec in config.subscribed("negative")]
    else:
        raise ValueError(f"unknown IRC event kind {event.kind!r}")
    if not targets:
        return []
    message = format_message(event)
    return [(name, message) for name in targets]
