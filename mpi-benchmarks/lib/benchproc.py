"""Process helpers for mpi-benchmarks/run: running commands as a user or as root with a clean
environment and a process group of their own (so that nothing outlives the runner), Slurm
allocations, and the /proc inspection behind the per-launcher memory measurement.

Standard library only."""

import copy
import os
import pwd
import re
import select
import signal
import subprocess
import tempfile
import time

# Every child the runner starts, so that cleanup can end them (and only them) by process group.
_LIVE = set()


class Creds:
    """Who a command runs as: the test user (uid, gid, groups, env) or root."""

    def __init__(self, user):
        pw = pwd.getpwnam(user)
        self.name = pw.pw_name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.home = pw.pw_dir
        self.groups = os.getgrouplist(pw.pw_name, pw.pw_gid)
        if self.uid == 0:
            path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        else:
            path = "/usr/local/bin:/usr/bin:/bin"
        # A login-like environment, as a user's job script would have it.
        self.env = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name,
                    "PATH": path, "LANG": "C.UTF-8"}
        if os.environ.get("SLURM_CONF"):
            self.env["SLURM_CONF"] = os.environ["SLURM_CONF"]

    @property
    def is_root(self):
        return self.uid == 0

    def with_env(self, **kv):
        """The same user with extra environment variables (e.g. SLURM_CONF of another
        cluster)."""
        c = copy.copy(self)
        c.env = {**self.env, **kv}
        return c

    def popen_kwargs(self):
        """Popen arguments that switch to this user in the child (no PAM, no extra process:
        the timing of what runs is not polluted by runuser/su)."""
        if os.geteuid() != 0 or self.uid == os.geteuid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": self.groups}


def spawn(argv, creds, *, env=None, cwd=None, stdout=subprocess.DEVNULL,
          stderr=subprocess.DEVNULL):
    e = dict(creds.env)
    if env:
        e.update(env)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                         env=e, cwd=cwd or creds.home, start_new_session=True,
                         **creds.popen_kwargs())
    _LIVE.add(p)
    return p


def _exited(p, timeout):
    """Wait until the child has exited, without reaping it: while it is a zombie its pid (and so
its process group id) cannot be reused, so the group can still be signalled safely."""
    if p.returncode is not None:
        return True
    try:
        fd = os.pidfd_open(p.pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def stop(p, grace=5.0):
    """End a child and whatever is left of its process group: SIGTERM (srun then cancels its
    step and forwards it to the tasks), SIGKILL after `grace` seconds; then reap it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if _exited(p, 0):
            break
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        if _exited(p, wait):
            break
    if p.returncode is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)   # stragglers; the leader is a zombie or alive
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()
    _LIVE.discard(p)


def stop_all():
    for p in list(_LIVE):
        stop(p, grace=3.0)


class Result:
    def __init__(self, rc, out, err, seconds, timed_out):
        self.rc, self.out, self.err, self.seconds, self.timed_out = rc, out, err, seconds, timed_out

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out

    def tail(self, n=12):
        lines = (self.err or "").strip().splitlines() + (self.out or "").strip().splitlines()[-3:]
        return "\n".join(lines[-n:])


def run(argv, creds, *, env=None, cwd=None, timeout=600, capture=True):
    """Run to completion; stdout/stderr through temporary files (no pipe deadlocks with 64
    ranks writing). Returns a Result with the wall time of the whole command."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = spawn(argv, creds, env=env, cwd=cwd, stdout=fo if capture else subprocess.DEVNULL,
                  stderr=fe)
        timed_out = not _exited(p, timeout)
        dt = time.perf_counter() - t0
        stop(p)
        fo.seek(0)
        fe.seek(0)
        out = fo.read().decode(errors="replace") if capture else ""
        err = fe.read().decode(errors="replace")
    return Result(p.returncode if not timed_out else 124, out, err, dt, timed_out)


# ---------------------------------------------------------------------------------------------
# Slurm allocations: every step the runner measures runs inside an allocation it holds, so that
# a step never waits in the queue behind someone else's job (that would be queue time, not
# launch time), and so that the measured steps are job steps, as in a batch script.

class Allocation:
    """`salloc --no-shell` of NODES nodes with TASKS tasks (default: the one 2-CPU node) on the
    cluster the creds' SLURM_CONF names (default /etc/slurm/slurm.conf)."""

    def __init__(self, creds, name, minutes, log, nodes=1, tasks=2):
        self.creds, self.name, self.minutes, self.log = creds, name, minutes, log
        self.nodes, self.tasks = nodes, tasks
        self.jobid = None
        self.waited = 0.0

    def __enter__(self):
        argv = ["salloc", "--no-shell", "-J", self.name, "-N", str(self.nodes), "-n",
                str(self.tasks), f"--time={self.minutes}"]
        self.log(f"waiting for the node: {' '.join(argv)} (as {self.creds.name})")
        # salloc reports the job id on stderr: "salloc: Granted job allocation N".
        r = run(argv, self.creds, timeout=900)
        self.waited = r.seconds
        m = re.search(r"Granted job allocation (\d+)", r.err)
        if not r.ok or not m:
            raise RuntimeError(f"salloc failed (rc {r.rc}): {r.tail()}")
        self.jobid = m.group(1)
        self.log(f"allocation {self.jobid} granted (as {self.creds.name}) after {self.waited:.1f} s")
        return self

    def srun(self, *args):
        return ["srun", f"--jobid={self.jobid}", "--quiet", *args]

    def __exit__(self, *exc):
        if self.jobid:
            run(["scancel", self.jobid], self.creds, timeout=60)
            # Wait until Slurm has torn the job down (its steps' processes are gone).
            for _ in range(100):
                r = run(["squeue", "-h", "-j", self.jobid, "-t", "PD,R,CG,S,CF", "-o", "%T"],
                        self.creds, timeout=30)
                if not r.out.strip():
                    break
                time.sleep(0.2)
            self.jobid = None
        return False


# ---------------------------------------------------------------------------------------------
# /proc inspection

def cpu_pressure_us():
    """Total microseconds during which some task waited for a CPU (PSI, /proc/pressure/cpu
    "some"), or None without PSI. Over an MPI run with one rank per core and nothing else on the
    node it barely moves; anything else competing for the cores shows up here."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class Proc:
    __slots__ = ("pid", "ppid", "comm", "argv", "rss_kib", "pss_kib", "uid")


def read_procs():
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            rss = 0
            uid = -1
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("Uid:"):
                        uid = int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        p = Proc()
        p.pid = int(d)
        rp = stat.rindex(")")
        p.comm = stat[stat.index("(") + 1:rp]
        p.ppid = int(stat[rp + 2:].split()[1])
        p.argv = argv
        p.rss_kib = rss
        p.pss_kib = None
        p.uid = uid
        procs[p.pid] = p
    return procs


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return None


def descendants(procs, root):
    kids = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    out, todo = set(), [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def ancestors(procs, pid):
    out = []
    seen = set()
    while pid in procs and pid not in seen:
        seen.add(pid)
        pid = procs[pid].ppid
        if pid <= 1:
            break
        out.append(pid)
    return out


def find_rank(procs, marker):
    """The rank: the process whose command line is exactly `sleep MARKER`."""
    for p in procs.values():
        if len(p.argv) == 2 and os.path.basename(p.argv[0]) == "sleep" and p.argv[1] == marker:
            return p.pid
    return None


def step_daemons(procs, jobid):
    """slurmstepd processes of the job's (numbered) steps."""
    rx = re.compile(r"^slurmstepd: \[" + re.escape(str(jobid)) + r"\.(\d+)\]")
    return [p.pid for p in procs.values() if p.argv and rx.match(" ".join(p.argv))]


def step_processes(procs, jobid):
    """Every process of the job's running numbered steps (descendants of their slurmstepd)."""
    out = set()
    for s in step_daemons(procs, jobid):
        out |= descendants(procs, s)
    return out


def mnt_ns(pid):
    """The mount namespace of a process ("mnt:[N]"), or None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def mount_count(pid):
    """Mounts in the process's mount namespace (lines of /proc/PID/mountinfo), or None."""
    try:
        with open(f"/proc/{pid}/mountinfo", "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return None


def launcher_processes(procs, jobid, rank, daemon_roots=()):
    """What the launcher leaves on the node while the rank runs:
    - every process in the step (descendants of the step's slurmstepd) that is not the rank or
      one of the rank's own children,
    - every ancestor of the rank up to init or the slurmstepd (e.g. conmon, the containerd
      shim, a runtime waiting for its container), and
    - separately, the daemons the launcher needs (e.g. dockerd and containerd).
    Returns (launcher_pids, daemon_pids)."""
    stepds = step_daemons(procs, jobid)
    rank_tree = {rank} | descendants(procs, rank)
    pids = set()
    for s in stepds:
        pids |= descendants(procs, s)
    for a in ancestors(procs, rank):
        if a in stepds or procs[a].comm in ("slurmstepd", "slurmd"):
            break
        pids.add(a)
    pids -= rank_tree
    pids -= set(stepds)
    daemons = set()
    for d in daemon_roots:
        if d in procs:
            daemons |= {d} | descendants(procs, d)
    daemons -= pids | rank_tree
    return sorted(pids), sorted(daemons)
