"""A one-node SLURM cluster on localhost for tests (Debian's slurm-wlm 22.05 and munge).

:func:`skip_reason` says why the cluster cannot be had here (not root, no apt-get, the executor
plugin missing, a slurm.conf or a slurmctld that are not ours). :class:`LocalCluster` installs
the packages when they are missing, writes ``/etc/slurm/slurm.conf`` (the default location: the
Snakemake SLURM plugin's job steps drop ``SLURM_CONF``), starts munged (unless one answers
already), slurmctld and slurmd, and stops exactly the daemons it started, by the process ids of
their pid files, then removes its slurm.conf. No accounting (no slurmdbd): the workflow queries
job states with ``squeue``, so finished jobs stay listed for ``MinJobAge`` = 600 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by kdseg tests/slurm_cluster.py"
PARTITION = "kdseg"
PACKAGES = ("slurm-wlm", "munge")
MUNGE_PID = Path("/run/munge/munged.pid")


def skip_reason() -> str | None:
    """Why this machine cannot run the local cluster, or None."""
    if os.geteuid() != 0:
        return "not root (installing slurm-wlm/munge and starting slurmctld/slurmd needs root)"
    if shutil.which("apt-get") is None:
        return "apt-get is missing (slurm-wlm and munge come from Debian)"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is missing (pip install -e .[cluster])"
    if SLURM_CONF.exists() and not SLURM_CONF.read_text().startswith(MARKER):
        return f"{SLURM_CONF} exists and was not written by this test (a real cluster?)"
    running = subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0
    if running:
        return "a slurmctld is running already (not started by this test)"
    return None


def _run(cmd: list[str], timeout: float = 60) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout


def install_packages() -> None:
    """``apt-get install slurm-wlm munge`` when one of them is missing."""
    missing = [
        p for p in PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode
    ]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if out.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for a parent that does not reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class LocalCluster:
    """slurmctld + slurmd on this host, state and logs under ``state``."""

    def __init__(self, state: Path, cpus: int = 2) -> None:
        self.state, self.cpus = state, cpus
        self.host = socket.gethostname().split(".")[0]
        self.started: list[tuple[str, Path]] = []  # (daemon, pid file) in start order

    def config_text(self) -> str:
        s = self.state
        return f"""{MARKER}: a one-node cluster on localhost, no accounting
ClusterName=kdsegtest
SlurmctldHost={self.host}(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={s}/ctld
SlurmdSpoolDir={s}/spool
SlurmctldPidFile={s}/slurmctld.pid
SlurmdPidFile={s}/slurmd.pid
SlurmctldLogFile={s}/slurmctld.log
SlurmdLogFile={s}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
KillWait=15
InactiveLimit=0
SlurmdParameters=config_overrides
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=16000 State=UNKNOWN
PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""

    def start(self) -> None:
        install_packages()
        for sub in ("ctld", "spool"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(self.config_text())
        self._start_munge()
        _run(["slurmctld"])
        self.started.append(("slurmctld", self.state / "slurmctld.pid"))
        _run(["slurmd"])
        self.started.append(("slurmd", self.state / "slurmd.pid"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
            if state.stdout.strip() == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the node did not become idle: {self.logs()}")

    def _start_munge(self) -> None:
        check = "munge -n | unmunge > /dev/null"
        if subprocess.run(["sh", "-c", check], capture_output=True).returncode == 0:
            return  # a munged answers already: use it, leave it running
        MUNGE_PID.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_PID.parent, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True, timeout=30)
        self.started.append(("munged", MUNGE_PID))
        deadline = time.monotonic() + 30
        while subprocess.run(["sh", "-c", check], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("munged did not answer within 30 s")
            time.sleep(0.5)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}"
            for p in (self.state / "slurmctld.log", self.state / "slurmd.log")
            if p.is_file()
        )

    def stop(self) -> None:
        """Cancel the partition's jobs, stop the daemons this cluster started (newest first,
        by pid), remove its slurm.conf."""
        if any(name == "slurmctld" for name, _ in self.started):
            subprocess.run(["scancel", "-p", PARTITION], capture_output=True, timeout=30)
        for _, pid_file in reversed(self.started):
            pid = _pid(pid_file)
            if pid is None or not _alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.started.clear()
        if SLURM_CONF.is_file() and SLURM_CONF.read_text().startswith(MARKER):
            SLURM_CONF.unlink()
