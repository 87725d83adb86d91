"""A real one-node SLURM cluster for the tests: munged, slurmctld and slurmd on localhost.

Debian's ``slurm-wlm`` and ``munge`` packages (``.ci/run`` installs them). Everything lives in a
fresh temporary folder: a munge key and socket, a slurm.conf on two free ports, state and spool
folders, logs. No cgroups (proctrack/linuxproc, task/none) and no accounting (no slurmdbd, so
no ``sacct``: submitit reports job states as UNKNOWN, and the harness never asks it). The
daemons run in the foreground as children of this process and are stopped by their pids.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


SLURM_CONF = """\
ClusterName=gtbtest{ctl_port}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctl_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    """Start with ``start()``, stop with ``stop()``; ``env`` holds SLURM_CONF for client commands."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="gtb-slurm-"))  # short: a unix socket path has 108 bytes
        self.procs: list[subprocess.Popen] = []
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _daemon(self, *cmd: str) -> subprocess.Popen:
        with open(self.root / "log" / f"{Path(cmd[0]).name}.out", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 60) -> SlurmCluster:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(mode=0o755)
        munge = self.root / "munge"
        subprocess.run(["mungekey", "-c", "-k", str(munge / "munge.key")], check=True, capture_output=True)
        self._daemon(
            "munged", "-F", "--force", f"--socket={munge}/munge.socket", f"--key-file={munge}/munge.key",
            f"--pid-file={munge}/munged.pid", f"--seed-file={munge}/munged.seed",
            f"--log-file={self.root}/log/munged.log",
        )  # fmt: skip
        ctl_port, d_port = _free_ports(2)
        cpus = max(4, os.cpu_count() or 1)  # config_overrides: four jobs at once even on two cores
        self.conf.write_text(SLURM_CONF.format(root=self.root, ctl_port=ctl_port, d_port=d_port, cpus=cpus))
        self._wait(lambda: (munge / "munge.socket").exists(), timeout, "munged's socket")
        self._daemon("slurmctld", "-D", "-f", str(self.conf))
        self._wait(lambda: self.run("sinfo", "-h", check=False).returncode == 0, timeout, "slurmctld")
        self._daemon("slurmd", "-D", "-N", "localhost", "-f", str(self.conf))
        idle = lambda: self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle"  # noqa: E731
        self._wait(idle, timeout, "the node idle")
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a SLURM test daemon exited while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.root / "log").glob("*")))

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=check, timeout=60)

    def jobs(self) -> dict[str, str]:
        """Job id -> state of every job in the queue (array tasks one by one)."""
        out = self.run("squeue", "-h", "-r", "-o", "%i|%T").stdout
        return dict(line.split("|") for line in out.split())

    def held_after_requeue(self) -> list[str]:
        """Jobs waiting for their begin time, as SLURM holds a requeued job for a while."""
        out = self.run("squeue", "-h", "-r", "-t", "PENDING", "-o", "%i|%r").stdout
        return [job for job, _, reason in (line.partition("|") for line in out.split()) if reason == "BeginTime"]

    def drain_queue(self, timeout: float = 60) -> None:
        """Cancel every job and wait until the queue is empty (tests leave no job behind)."""
        if self.jobs():
            self.run("scancel", "--user", "root", check=False)
        deadline = time.time() + timeout
        while self.jobs() and time.time() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        """Cancel what is left, then stop the daemons this object started (slurmd first), by pid."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.drain_queue(timeout=30)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
