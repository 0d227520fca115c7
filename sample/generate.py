"""Generate the project's small, realistic sample CI history (deterministic).

    python sample/generate.py            # writes sample/logs.jsonl.gz and sample/builds.json
    python sample/generate.py --build-dirs /tmp/builds   # also one log directory per build

Ten days of Zuul builds (2026-11-10T00:00Z to 2026-11-20T00:00Z) of a few
OpenStack projects in the check and gate pipelines: devstack/tempest jobs with
oslo.log service logs (``controller/logs/screen-n-cpu.txt``...), unit-test jobs
with only ``job-output.txt``, voting and non-voting jobs, several node
providers. Known bugs (see ``BUGS`` and ``queries/<bug>.yaml``) are injected
into some failed builds (and, rarely, into successful ones, as real flaky
errors that were retried); other failures are unexplained.

Log lines go through :mod:`elastic_recheck.ingest.log_lines` (the same parsing as
``elastic-recheck ingest --build-dir``) so the documents are exactly what an
ingest of the raw files would store (DEBUG lines dropped).

The benchmark (``python -m benchmarks store``) reuses :func:`generate_builds`
and :func:`build_files` to make a million lines of the same vocabulary.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from elastic_recheck.ingest.build_info import BuildInfo  # noqa: E402
from elastic_recheck.ingest.log_lines import documents_for_lines  # noqa: E402

SEED = 20261120
END = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = 10
START = END - timedelta(days=DAYS)
LOG_HOST = "https://logs.ci.example.org"

PROJECTS = (
    "openstack/nova",
    "openstack/neutron",
    "openstack/cinder",
    "openstack/glance",
    "openstack/keystone",
    "openstack/tempest",
)
PROVIDERS = ("rax-dfw", "rax-ord", "ovh-bhs1", "ovh-gra1", "inmotion-iad3", "openmetal-iad3")


@dataclass(frozen=True)
class Job:
    name: str
    kind: str  # devstack | tox
    voting: bool
    services: tuple[str, ...] = ()
    fail_rate: float = 0.25


JOBS: tuple[Job, ...] = (
    Job("tempest-full-py3", "devstack", True, ("n-cpu", "n-api", "q-svc", "c-vol", "g-api"), 0.30),
    Job("tempest-integrated-compute", "devstack", True, ("n-cpu", "n-api", "q-svc", "c-vol"), 0.30),
    Job("nova-live-migration", "devstack", True, ("n-cpu", "n-api", "q-svc"), 0.35),
    Job("neutron-ovn-tempest-ovs-release", "devstack", True, ("n-cpu", "q-svc", "n-api"), 0.30),
    Job("cinder-tempest-plugin-lvm-lio-barbican", "devstack", True, ("c-vol", "c-api", "n-cpu"), 0.30),
    Job("nova-ceph-multistore", "devstack", False, ("n-cpu", "n-api", "c-vol", "g-api"), 0.45),
    Job("grenade", "devstack", True, ("n-cpu", "n-api", "q-svc"), 0.25),
    Job("openstack-tox-py311", "tox", True, (), 0.12),
    Job("openstack-tox-pep8", "tox", True, (), 0.08),
    Job("openstack-tox-py312", "tox", False, (), 0.15),
)

SERVICE_MODULES = {
    "n-cpu": ("nova-compute", ("nova.compute.manager", "nova.virt.libvirt.driver", "nova.compute.resource_tracker", "os_vif")),
    "n-api": ("nova-api", ("nova.api.openstack.requestlog", "nova.api.openstack.wsgi", "nova.scheduler.client.report")),
    "q-svc": ("neutron-server", ("neutron.wsgi", "neutron.plugins.ml2.plugin", "neutron.db.l3_db", "neutron.api.v2.base")),
    "c-vol": ("cinder-volume", ("cinder.volume.manager", "cinder.volume.drivers.lvm", "cinder.coordination")),
    "c-api": ("cinder-api", ("cinder.api.openstack.wsgi", "cinder.volume.api")),
    "g-api": ("glance-api", ("glance.api.v2.images", "glance.common.wsgi")),
}


@dataclass(frozen=True)
class Bug:
    """A known intermittent bug: where its lines go and how often it strikes."""

    number: str
    title: str
    file: str  # screen-<svc>.txt, job-output.txt or syslog.txt
    jobs: tuple[str, ...]  # jobs it can hit (empty: any job of the kind)
    kind: str  # devstack | tox | any
    weight: float  # relative share among explained failures
    success_rate: float  # chance to appear in a successful build of an eligible job
    projects: tuple[str, ...]
    query: str
    suppress_graph: bool = False


BUGS: tuple[Bug, ...] = (
    Bug(
        "1893618",
        "libvirt crashes with 'End of file while reading data: Input/output error'",
        "screen-n-cpu.txt",
        (),
        "devstack",
        3.0,
        0.0,
        ("openstack/nova",),
        'message:"End of file while reading data: Input/output error" AND tags:"screen-n-cpu.txt"',
    ),
    Bug(
        "1927411",
        "apt mirror timeouts: Failed to fetch ... Connection timed out",
        "job-output.txt",
        (),
        "any",
        2.0,
        0.0,
        ("opendev/system-config",),
        'message:"Failed to fetch" AND message:"Connection timed out" AND tags:"console"',
    ),
    Bug(
        "1945311",
        "SSHTimeout in tempest scenario tests: Connection via SSH timed out",
        "job-output.txt",
        ("tempest-full-py3", "tempest-integrated-compute", "neutron-ovn-tempest-ovs-release", "nova-live-migration"),
        "devstack",
        3.0,
        0.0,
        ("openstack/tempest", "openstack/neutron"),
        'message:"via SSH timed out" AND message:"Connection to the" AND tags:"console"',
    ),
    Bug(
        "1958723",
        "DBDeadlock in neutron-server: Deadlock found when trying to get lock",
        "screen-q-svc.txt",
        (),
        "devstack",
        2.0,
        0.04,
        ("openstack/neutron",),
        'message:"Deadlock found when trying to get lock; try restarting transaction" AND tags:"screen-q-svc.txt"',
    ),
    Bug(
        "1986104",
        "cinder-volume MessagingTimeout waiting for a reply",
        "screen-c-vol.txt",
        (),
        "devstack",
        2.5,
        0.0,
        ("openstack/cinder",),
        'message:"Timed out waiting for a reply to message ID" AND tags:"screen-c-vol.txt"',
    ),
    Bug(
        "2004555",
        "Volume detach fails: Unable to detach the device from the live config",
        "screen-n-cpu.txt",
        ("tempest-full-py3", "cinder-tempest-plugin-lvm-lio-barbican", "nova-ceph-multistore", "tempest-integrated-compute"),
        "devstack",
        3.0,
        0.0,
        ("openstack/nova", "openstack/cinder"),
        'message:"Device detach failed for" AND message:"Unable to detach the device from the live config" AND tags:"screen-n-cpu.txt"',
    ),
    Bug(
        "2011374",
        "Test nodes run out of memory: oom-killer kills mysqld",
        "syslog.txt",
        (),
        "devstack",
        1.0,
        0.02,
        ("openstack/devstack",),
        'message:"Out of memory: Killed process" AND message:"mysqld" AND tags:"syslog"',
        suppress_graph=True,
    ),
)
BUG_BY_NUMBER = {b.number: b for b in BUGS}

#: Share of failed builds that get no known bug (unexplained failures).
UNEXPLAINED_SHARE = 0.3


@dataclass
class Build:
    uuid: str
    job_name: str
    project: str
    pipeline: str
    change: int
    patchset: int
    branch: str
    voting: bool
    node_provider: str
    result: str
    start_time: datetime
    end_time: datetime
    buildset: str
    bugs: list[str] = field(default_factory=list)
    unexplained: bool = False
    #: With ``--unknown-sources``: what an unexplained failure really is
    #: (``recurring-<k>``: an unknown error that strikes many changes;
    #: ``oneoff-<uuid>``: an error of this build alone). Empty otherwise.
    unknown_source: str = ""

    @property
    def short(self) -> str:
        return self.uuid[:7]

    @property
    def log_url(self) -> str:
        return f"{LOG_HOST}/{self.change % 100:02d}/{self.change}/{self.patchset}/{self.pipeline}/{self.job_name}/{self.short}/"

    @property
    def kind(self) -> str:
        return JOB_BY_NAME[self.job_name].kind

    def info(self) -> BuildInfo:
        return BuildInfo(
            uuid=self.uuid,
            name=self.job_name,
            status=self.result,
            change=str(self.change),
            patchset=str(self.patchset),
            queue=self.pipeline,
            project=self.project,
            voting=self.voting,
            node_provider=self.node_provider,
            log_url=self.log_url,
            branch=self.branch,
            ref=f"refs/changes/{self.change % 100:02d}/{self.change}/{self.patchset}",
            build_set=self.buildset,
            tenant="openstack",
            start_time=self.start_time,
            end_time=self.end_time,
        )

    def record(self) -> dict[str, Any]:
        """A Zuul-API-like build record plus the ground truth (``injected_bugs``)."""
        return {
            "uuid": self.uuid,
            "job_name": self.job_name,
            "result": self.result,
            "voting": self.voting,
            "pipeline": self.pipeline,
            "project": self.project,
            "branch": self.branch,
            "change": self.change,
            "patchset": str(self.patchset),
            "ref": f"refs/changes/{self.change % 100:02d}/{self.change}/{self.patchset}",
            "ref_url": f"https://review.example.org/{self.change}",
            "log_url": self.log_url,
            "start_time": self.start_time.strftime("%Y-%m-%dT%H:%M:%S"),
            "end_time": self.end_time.strftime("%Y-%m-%dT%H:%M:%S"),
            "duration": int((self.end_time - self.start_time).total_seconds()),
            "node_provider": self.node_provider,
            "tenant": "openstack",
            "buildset": {"uuid": self.buildset},
            "injected_bugs": list(self.bugs),
            "unexplained_failure": self.unexplained,
            **({"unknown_source": self.unknown_source} if self.unknown_source else {}),
        }


JOB_BY_NAME = {j.name: j for j in JOBS}


def _uuid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _eligible(bug: Bug, job: Job) -> bool:
    if bug.kind != "any" and bug.kind != job.kind:
        return False
    if bug.jobs and job.name not in bug.jobs:
        return False
    if job.kind == "devstack" and bug.file.startswith("screen-"):
        svc = bug.file[len("screen-") : -len(".txt")]
        return svc in job.services
    return True


def generate_builds(rng: random.Random, buildsets: int, start: datetime = START, end: datetime = END) -> list[Build]:
    """Buildsets of 2-5 jobs each, spread over ``[start, end)``, sorted by start time."""
    builds: list[Build] = []
    span = (end - start).total_seconds()
    change_base = 930000
    for _ in range(buildsets):
        project = rng.choice(PROJECTS)
        pipeline = "gate" if rng.random() < 0.3 else "check"
        change = change_base + rng.randrange(0, 9000)
        patchset = rng.randint(1, 9)
        branch = "master" if rng.random() < 0.85 else rng.choice(("stable/2026.1", "stable/2025.2"))
        buildset = _uuid(rng)
        t0 = start + timedelta(seconds=rng.uniform(0, span - 4 * 3600))
        njobs = rng.randint(2, 5)
        for job in rng.sample(JOBS, njobs):
            provider = rng.choice(PROVIDERS)
            duration = timedelta(minutes=rng.uniform(8, 25) if job.kind == "tox" else rng.uniform(45, 150))
            bstart = t0 + timedelta(seconds=rng.uniform(30, 600))
            failed = rng.random() < job.fail_rate
            build = Build(
                uuid=_uuid(rng),
                job_name=job.name,
                project=project,
                pipeline=pipeline,
                change=change,
                patchset=patchset,
                branch=branch,
                voting=job.voting,
                node_provider=provider,
                result="FAILURE" if failed else "SUCCESS",
                start_time=bstart,
                end_time=bstart + duration,
                buildset=buildset,
            )
            eligible = [b for b in BUGS if _eligible(b, job)]
            if failed:
                if not eligible or rng.random() < UNEXPLAINED_SHARE:
                    build.unexplained = True
                else:
                    weights = [b.weight for b in eligible]
                    build.bugs.append(rng.choices(eligible, weights)[0].number)
                    if rng.random() < 0.08:  # two bugs at once happens
                        other = rng.choice(eligible).number
                        if other not in build.bugs:
                            build.bugs.append(other)
            else:
                for bug in eligible:
                    if rng.random() < bug.success_rate:
                        build.bugs.append(bug.number)
            builds.append(build)
    builds.sort(key=lambda b: (b.start_time, b.uuid))
    return builds


# ---------------------------------------------------------------------------
# Log text


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


def _req(rng: random.Random) -> str:
    return f"req-{rng.getrandbits(64):016x}"


def _oslo(ts: datetime, pid: int, level: str, module: str, text: str) -> str:
    return f"{ts.strftime('%Y-%m-%d %H:%M:%S')}.{ts.microsecond // 1000:03d} {pid} {level} {module} {text}"


def _journal(ts: datetime, host: str, svc: str, unit: str, pid: int, level: str, module: str, text: str) -> str:
    return f"{ts.strftime('%b %d %H:%M:%S')}.{ts.microsecond:06d} {host} {unit}[{pid}]: {level} {module} {text}"


_INFO_TEXTS = (
    "[{req} admin admin] {ip} \"GET /v2.1/servers/detail HTTP/1.1\" status: 200 len: 1893 time: 0.{ms:03d}",
    "[{req} demo demo] Lock \"compute_resources\" acquired by \"nova.compute.resource_tracker.ResourceTracker._update_available_resource\" :: waited 0.000s",
    "[{req} demo demo] Took {sec}.{ms:03d} seconds to build instance.",
    "[-] Compute_service record updated for {host}:{host}",
    "[{req} admin admin] Successfully synced instances from host '{host}'.",
    "[{req} demo demo] [instance: {inst}] Attempting claim on node {host}: memory 512 MB, disk 1 GB, vcpus 1 CPU",
    "[{req} demo demo] Port {inst} updated with migration profile successfully",
    "[-] Agent out of sync with plugin!",
    "[{req} admin admin] Volume {inst}: being created as raw with specification: {{'status': 'creating', 'volume_size': 1}}",
    "[{req} demo demo] Image {inst} is active",
    "[{req} demo demo] Connection to the {ip} via SSH succeeded",
    "[-] Deadlock detection enabled for lock manager",
)
_WARNING_TEXTS = (
    "[{req} demo demo] [instance: {inst}] Received unexpected event network-vif-plugged-{inst} for instance with vm_state active and task_state None.",
    "[-] Unable to refresh token: Keystone request timed out, retrying",
    "[{req} admin admin] Timed out waiting for a reply, will retry in 1 second",
    "[-] Couldn't obtain IP address of instance {inst}",
)
_DEBUG_TEXTS = (
    "[{req} demo demo] Acquiring lock \"{inst}\" by \"nova.compute.manager.ComputeManager.build_and_run_instance\" inner /opt/stack/nova/oslo_concurrency/lockutils.py:404",
    "[-] Running periodic task ComputeManager._poll_volume_usage run_periodic_tasks /opt/stack/oslo.service/oslo_service/periodic_task.py:210",
    "[{req} demo demo] Getting list of instances from cluster {inst} _sync_power_states /opt/stack/nova/nova/compute/manager.py:10142",
)
_GENERIC_FAILURES = (
    ("tempest.api.compute.servers.test_server_actions.ServerActionsTestJSON.test_rebuild_server", "testtools.matchers._impl.MismatchError: 'ACTIVE' != 'ERROR'"),
    ("tempest.api.network.test_ports.PortsTestJSON.test_create_port_in_allowed_allocation_pools", "tempest.lib.exceptions.Conflict: Conflict with state of target resource"),
    ("tempest.api.image.v2.test_images.ImportImagesTest.test_image_web_download_import", "tempest.lib.exceptions.TimeoutException: Request timed out"),
    ("nova.tests.unit.compute.test_compute.ComputeTestCase.test_run_instance_queries_macs", "AssertionError: Expected 'get_mac_address' to be called once. Called 2 times."),
)


#: ``--unknown-sources``: unknown errors that fail builds of many changes
#: (infrastructure trouble no fingerprint covers yet): (test id, error line).
RECURRING_UNKNOWN = (
    ("tempest.api.compute.servers.test_servers.ServersTestJSON.test_create_server",
     "neutron_lib.exceptions.PortBindingFailed: Binding failed for port {uuid}, please check neutron logs for more information."),
    ("tempest.api.volume.test_volumes_actions.VolumesActionsTest.test_attach_detach_volume_to_instance",
     "tempest.lib.exceptions.TimeoutException: Request timed out\nDetails: volume {uuid} failed to reach in-use status within the required time ({sec} s)."),
    ("tempest.scenario.test_server_basic_ops.TestServerBasicOps.test_server_basic_ops",
     "paramiko.ssh_exception.NoValidConnectionsError: [Errno None] Unable to connect to port 22 on {ip}"),
    ("nova.tests.functional.test_servers.ServersTest.test_create_and_delete_server",
     "oslo_db.exception.DBConnectionError: (pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query')"),
)
#: Words of the one-off errors (a change broke its own test: a message nobody else logs).
_ONEOFF_WORDS = (
    "flavor", "quota", "widget", "bridge", "tenant", "keypair", "snapshot", "router", "subnet", "policy", "schema",
    "marker", "cursor", "backend", "adapter", "payload", "handler", "resolver", "encoder", "parser", "template",
    "catalog", "endpoint", "region", "zone", "shelve", "rescue", "resize", "migrate", "evacuate", "volume", "image",
)
#: Share of unexplained failures that are one-offs (the rest: a recurring unknown error).
ONEOFF_SHARE = 0.4


def _unknown_source(rng: random.Random, build: Build) -> str:
    if rng.random() < ONEOFF_SHARE:
        return f"oneoff-{build.uuid}"
    return f"recurring-{rng.randrange(len(RECURRING_UNKNOWN))}"


def _unknown_lines(rng: random.Random, build: Build, host: str) -> list[str]:
    """The console lines of an unexplained failure with a known source."""
    if build.unknown_source.startswith("recurring-"):
        test_id, template = RECURRING_UNKNOWN[int(build.unknown_source.split("-", 1)[1])]
        err = template.format(uuid=f"{rng.getrandbits(128):032x}", sec=rng.randint(196, 300), ip=_ip(rng))
    else:
        test_id, _ = rng.choice(_GENERIC_FAILURES)
        a, b, c = (rng.choice(_ONEOFF_WORDS) for _ in range(3))
        err = f"AssertionError: '{a}_{b}' not found in the {c} response of change {build.change}: got '{b}_{a}_{c}'"
    return [f"{host} | {{2}} {test_id} [{rng.uniform(1, 90):.6f}s] ... FAILED", *(f"{host} | {x}" for x in err.split("\n"))]


def _fill(rng: random.Random, template: str, host: str) -> str:
    return template.format(
        req=_req(rng),
        ip=_ip(rng),
        ms=rng.randrange(1000),
        sec=rng.randint(1, 90),
        host=host,
        inst=f"{rng.getrandbits(64):016x}",
    )


def _bug_lines(rng: random.Random, bug: str, ts: datetime, pid: int, host: str) -> list[str]:
    """The log lines (in that bug's file) that show one bug."""
    if bug == "1893618":
        return [
            _oslo(ts, pid, "ERROR", "nova.virt.libvirt.driver", f"[{_req(rng)} demo demo] [instance: {rng.getrandbits(64):016x}] Failed to start libvirt guest: libvirt.libvirtError: End of file while reading data: Input/output error"),
            _oslo(ts, pid, "ERROR", "nova.compute.manager", f"[{_req(rng)} demo demo] Traceback (most recent call last):"),
            "  File \"/opt/stack/nova/nova/virt/libvirt/guest.py\", line 165, in launch",
            "    return self._domain.createWithFlags(flags)",
            "libvirt.libvirtError: End of file while reading data: Input/output error",
        ]
    if bug == "1958723":
        return [
            _oslo(ts, pid, "ERROR", "oslo_db.api", f"[{_req(rng)} admin admin] DB exceeded retry limit.: oslo_db.exception.DBDeadlock: (pymysql.err.OperationalError) (1213, 'Deadlock found when trying to get lock; try restarting transaction')"),
            "[SQL: UPDATE standardattributes SET revision_number=%(revision_number)s WHERE standardattributes.id = %(standardattributes_id)s]",
        ]
    if bug == "1986104":
        return [
            _oslo(ts, pid, "ERROR", "cinder.volume.manager", f"[{_req(rng)} admin admin] Failed to create volume: oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message ID {rng.getrandbits(128):032x}"),
        ]
    if bug == "2004555":
        dev = rng.choice(("vdb", "vdc"))
        return [
            _oslo(ts, pid, "ERROR", "nova.virt.libvirt.driver", f"[{_req(rng)} demo demo] [instance: {rng.getrandbits(64):016x}] Device detach failed for {dev}: Unable to detach the device from the live config."),
        ]
    if bug == "2011374":
        kpid = rng.randint(20000, 60000)
        return [
            f"{ts.strftime('%b %d %H:%M:%S')} {host} kernel: [{rng.randint(3000, 9000)}.{rng.randrange(1000000):06d}] Out of memory: Killed process {kpid} (mysqld) total-vm:{rng.randint(1500000, 2500000)}kB, anon-rss:{rng.randint(300000, 900000)}kB, file-rss:0kB",
        ]
    raise KeyError(bug)


def _console(ts: datetime, text: str) -> str:
    return f"{ts.strftime('%Y-%m-%d %H:%M:%S')}.{ts.microsecond:06d} | {text}"


def build_files(rng: random.Random, build: Build) -> dict[str, list[str]]:
    """The raw log files of one build: relative path -> lines (without newlines)."""
    job = JOB_BY_NAME[build.job_name]
    host = f"np{rng.randint(30000000, 39999999)}"
    files: dict[str, list[str]] = {}
    span = (build.end_time - build.start_time).total_seconds()

    def at(frac: float) -> datetime:
        return build.start_time + timedelta(seconds=span * frac)

    bug_frac = {b: rng.uniform(0.45, 0.9) for b in build.bugs}
    # Service logs
    for svc in job.services:
        _unit_name, modules = SERVICE_MODULES[svc]
        pid = rng.randint(1000, 99999)
        name = f"screen-{svc}.txt"
        events: list[tuple[float, list[str]]] = []
        n = rng.randint(25, 55)
        for _ in range(n):
            frac = rng.uniform(0.15, 0.98)
            r = rng.random()
            if r < 0.45:
                level, text = "DEBUG", rng.choice(_DEBUG_TEXTS)
            elif r < 0.92:
                level, text = "INFO", rng.choice(_INFO_TEXTS)
            else:
                level, text = "WARNING", rng.choice(_WARNING_TEXTS)
            events.append((frac, [_oslo(at(frac), pid, level, rng.choice(modules), _fill(rng, text, host))]))
        for bug in build.bugs:
            if BUG_BY_NUMBER[bug].file == name:
                frac = bug_frac[bug]
                events.append((frac, _bug_lines(rng, bug, at(frac), pid, host)))
        events.sort(key=lambda e: e[0])
        files[f"controller/logs/{name}"] = [line for _, lines in events for line in lines]
    if job.kind == "devstack":
        events = []
        for _ in range(rng.randint(8, 16)):
            frac = rng.uniform(0.0, 1.0)
            text = rng.choice(
                (
                    f"{host} systemd[1]: Started Devstack devstack@{rng.choice(job.services)}.service.",
                    f"{host} kernel: [{rng.randint(10, 9000)}.{rng.randrange(1000000):06d}] IPv6: ADDRCONF(NETDEV_CHANGE): tap{rng.getrandbits(32):08x}-0d: link becomes ready",
                    f"{host} sudo[{rng.randint(1000, 60000)}]:    stack : PWD=/opt/stack ; USER=root ; COMMAND=/usr/bin/ovs-vsctl show",
                    f"{host} ovs-vswitchd: ovs|{rng.randint(100, 9999):05d}|bridge|INFO|bridge br-int: added interface tap{rng.getrandbits(32):08x}-0d on port {rng.randint(2, 40)}",
                )
            )
            events.append((frac, [f"{at(frac).strftime('%b %d %H:%M:%S')} {text}"]))
        for bug in build.bugs:
            if BUG_BY_NUMBER[bug].file == "syslog.txt":
                frac = bug_frac[bug]
                events.append((frac, _bug_lines(rng, bug, at(frac), 0, host)))
        events.sort(key=lambda e: e[0])
        files["controller/logs/syslog.txt"] = [line for _, lines in events for line in lines]
    # job-output.txt
    out: list[tuple[float, str]] = [
        (0.0, "Job console starting..."),
        (0.001, "Updating repositories"),
        (0.002, "Preparing job workspace"),
        (0.003, "Running Ansible setup..."),
        (0.004, "PRE-RUN START: [trusted : opendev.org/opendev/base-jobs/playbooks/base/pre.yaml@master]"),
        (0.01, "TASK [add-build-sshkey : Create Temp SSH key]"),
        (0.02, f"{host} | ok: Runtime: 0:00:00.{rng.randrange(1000000):06d}"),
        (0.03, "TASK [configure-mirrors : Install apt mirror configuration]"),
        (0.04, f"{host} | changed"),
        (0.05, "PRE-RUN END RESULT_NORMAL: [trusted : opendev.org/opendev/base-jobs/playbooks/base/pre.yaml@master]"),
    ]
    if "1927411" in build.bugs:
        mirror = build.node_provider.replace("-", ".")
        out.append((0.08, f"{host} | E: Failed to fetch https://mirror.{mirror}.opendev.org/ubuntu/dists/noble/main/binary-amd64/Packages  Connection timed out [IP: {_ip(rng)} 443]"))
        out.append((0.081, f"{host} | E: Some index files failed to download. They have been ignored, or old ones used instead."))
    else:
        out.append((0.08, f"{host} | Hit:1 https://mirror.{build.node_provider.replace('-', '.')}.opendev.org/ubuntu noble InRelease"))
    if job.kind == "devstack":
        out.append((0.1, "RUN START: [untrusted : opendev.org/openstack/devstack/playbooks/devstack.yaml@master]"))
        for i in range(rng.randint(10, 20)):
            out.append((0.1 + 0.3 * i / 20, f"{host} | {rng.choice(('+ lib/nova:start_nova_compute:1012 :   run_process n-cpu', '+ functions-common:service_check:1693 :   return 0', 'Processing triggers for man-db (2.12.0-4build2) ...', '+ lib/neutron:configure_neutron:255 :   iniset /etc/neutron/neutron.conf DEFAULT bind_host 0.0.0.0'))}"))
        out.append((0.4, f"{host} | This is your host IP address: {_ip(rng)}"))
        out.append((0.41, f"{host} | stack.sh completed in {rng.randint(700, 1500)} seconds."))
        out.append((0.45, "RUN START: [untrusted : opendev.org/openstack/tempest/playbooks/devstack-tempest.yaml@master]"))
        ntests = rng.randint(12, 30)
        for i in range(ntests):
            cls = rng.choice(("test_servers.ServersTestJSON", "test_volumes_get.VolumesGetTestJSON", "test_networks.NetworksTest", "test_images.ImagesTestJSON"))
            out.append((0.45 + 0.4 * i / ntests, f"{host} | {{{rng.randint(0, 3)}}} tempest.api.{cls}.test_{rng.choice(('create', 'list', 'show', 'update', 'delete'))}_{rng.choice(('server', 'volume', 'network', 'image'))} [{rng.randint(1, 40)}.{rng.randrange(1000):03d}s] ... ok"))
        if "1945311" in build.bugs:
            ip = f"172.24.5.{rng.randint(2, 250)}"
            out.append((0.86, f"{host} | {{1}} tempest.scenario.test_network_basic_ops.TestNetworkBasicOps.test_network_basic_ops [{rng.randint(200, 400)}.{rng.randrange(1000):03d}s] ... FAILED"))
            out.append((0.861, f"{host} | tempest.lib.exceptions.SSHTimeout: Connection to the {ip} via SSH timed out."))
            out.append((0.862, f"{host} | User: cirros, Password: None"))
        elif rng.random() < 0.3:
            out.append((0.86, f"{host} | Connection to the {_ip(rng)} via SSH succeeded after 3 attempts"))
    else:
        out.append((0.1, "RUN START: [untrusted : opendev.org/zuul/zuul-jobs/playbooks/tox/run.yaml@master]"))
        for i in range(rng.randint(20, 45)):
            out.append((0.1 + 0.75 * i / 45, f"{host} | {{{rng.randint(0, 7)}}} {build.project.split('/')[1]}.tests.unit.test_{rng.choice(('api', 'db', 'utils', 'manager', 'rpc'))}.TestCase.test_{rng.choice(('create', 'list', 'show', 'delete', 'sync'))}_{rng.randint(1, 99)} [{rng.uniform(0.001, 3):.6f}s] ... ok"))
    if build.unexplained and build.unknown_source:
        for k, text in enumerate(_unknown_lines(rng, build, host)):
            out.append((0.9 + k / 1000, text))
    elif build.unexplained:
        test_id, err = rng.choice(_GENERIC_FAILURES)
        out.append((0.9, f"{host} | {{2}} {test_id} [{rng.uniform(1, 90):.6f}s] ... FAILED"))
        out.append((0.901, f"{host} | {err}"))
    failed = build.result == "FAILURE"
    out.append((0.95, f"{host} | ======"))
    out.append((0.951, f"{host} | Totals"))
    out.append((0.952, f"{host} | ======"))
    out.append((0.953, f"{host} |  - Passed: {rng.randint(200, 1500)}"))
    out.append((0.954, f"{host} |  - Failed: {rng.randint(1, 3) if failed else 0}"))
    out.append((0.97, "RUN END RESULT_NORMAL: [untrusted : opendev.org/zuul/zuul-jobs/playbooks/tox/run.yaml@master]" if not failed else "RUN END RESULT_NORMAL: [untrusted] (failed tasks)"))
    out.append((0.99, "POST-RUN START: [trusted : opendev.org/opendev/base-jobs/playbooks/base/post-logs.yaml@master]"))
    out.append((1.0, f"Job complete, result: {build.result}"))
    files["job-output.txt"] = [_console(at(frac), text) for frac, text in sorted(out, key=lambda e: e[0])]
    return dict(sorted(files.items()))


def build_documents(rng: random.Random, build: Build, keep_debug: bool = False) -> Iterator[dict[str, Any]]:
    """The stored documents of one build (through the real ingest parsing)."""
    info = build.info()
    for rel, lines in build_files(rng, build).items():
        yield from documents_for_lines(rel, lines, info, keep_debug=keep_debug)


# ---------------------------------------------------------------------------
# Fingerprints


def fingerprint_yaml(bug: Bug) -> str:
    lines = [
        f"# {bug.title}",
        "query: >-",
    ]
    words = bug.query.split(" AND ")
    for i, part in enumerate(words):
        lines.append("  " + part + (" AND" if i < len(words) - 1 else ""))
    lines.append(f"bug_title: {json.dumps(bug.title)}")
    lines.append("projects:")
    lines.extend(f"  - {p}" for p in bug.projects)
    if bug.suppress_graph:
        lines.append("suppress-graph: true")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------


def assign_unknown_sources(builds: list[Build], seed: int) -> None:
    """Give every unexplained failure a known source (``--unknown-sources``), from its own random stream."""
    rng = random.Random(f"{seed}:unknown-sources")
    for build in builds:
        if build.unexplained:
            build.unknown_source = _unknown_source(rng, build)


def write_sample(
    out_dir: Path, queries_dir: Path | None, build_dirs: Path | None, buildsets: int, seed: int,
    unknown_sources: bool = False,
) -> dict[str, Any]:
    rng = random.Random(seed)
    builds = generate_builds(rng, buildsets)
    if unknown_sources:
        assign_unknown_sources(builds, seed)
    raw = io.BytesIO()
    ndocs = 0
    with gzip.GzipFile(filename="logs.jsonl", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for build in builds:
            brng = random.Random(f"{seed}:{build.uuid}")
            if build_dirs is not None:
                for rel, lines in build_files(random.Random(f"{seed}:{build.uuid}"), build).items():
                    path = build_dirs / build.uuid / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                (build_dirs / build.uuid / "zuul-build.json").write_text(json.dumps(build.record(), indent=2) + "\n")
            for doc in build_documents(brng, build):
                gz.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
                ndocs += 1
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "logs.jsonl.gz").write_bytes(raw.getvalue())
    summary = {
        "seed": seed,
        "start": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": END.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "builds": len(builds),
        "failed_builds": sum(1 for b in builds if b.result == "FAILURE"),
        "documents": ndocs,
        "bugs": {b.number: sum(1 for x in builds if b.number in x.bugs) for b in BUGS},
        "unexplained_failures": sum(1 for b in builds if b.unexplained),
    }
    if unknown_sources:
        summary["unknown_sources"] = {
            "recurring": sum(1 for b in builds if b.unknown_source.startswith("recurring-")),
            "oneoff": sum(1 for b in builds if b.unknown_source.startswith("oneoff-")),
        }
    payload = {"summary": summary, "builds": [b.record() for b in builds]}
    (out_dir / "builds.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    if queries_dir is not None:
        queries_dir.mkdir(parents=True, exist_ok=True)
        for bug in BUGS:
            (queries_dir / f"{bug.number}.yaml").write_text(fingerprint_yaml(bug), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "sample", help="output directory (default: sample/)")
    parser.add_argument("--queries", default=str(ROOT / "queries"), help="where to write the fingerprints ('' to skip)")
    parser.add_argument("--build-dirs", type=Path, default=None, help="also write each build's raw log directory here")
    parser.add_argument("--buildsets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--unknown-sources", action="store_true",
        help="unexplained failures get known sources: recurring unknown errors across changes, and one-offs "
        "(ground truth: unknown_source); off, the sample is the bundled one",
    )
    args = parser.parse_args(argv)
    queries = Path(args.queries) if args.queries else None
    summary = write_sample(args.out, queries, args.build_dirs, args.buildsets, args.seed, args.unknown_sources)
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["BUGS", "Build", "build_documents", "build_files", "generate_builds"]
