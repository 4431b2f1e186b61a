#!/usr/bin/env python3
"""Reliability of one container per node under SIGKILL (issue 13).

Runs STEPS Slurm steps of RANKS ranks each (`srun -O -n RANKS socker-mpi IMAGE /bin/sh -c ...`,
as the test user, through the installed setuid binary) and, in each, sends SIGKILL to one rank
chosen at random at a random moment of its set-up (while it is still the launcher: before its
exec). Then it checks:
  - no hung rank: every step ends within --timeout seconds, no process of the user is left;
  - nothing left behind: host mounts, the state and runtime directories and /tmp as before;
  - every rank but the killed one either ran (printed "ran-N") or failed with a one-line
    message naming its rank ("socker-mpi[rank N]: ...").
Prints one summary line per --report steps and a final table; exit status 1 on any failure.
Run as root (the harness); the ranks run as --user.
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time


def launchers(uid):
    """pids of the user's processes still in the launcher (comm socker-mpi)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            if "(socker-mpi)" not in stat:
                continue
            if real_uid(d) != uid:  # (a setuid process's /proc/PID is root's: not dumpable)
                continue
            out.append(int(d))
        except OSError:
            continue
    return out


def real_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def rank_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"SLURM_PROCID="):
                    return int(kv.split(b"=", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def phase_of(pid, host_ns):
    """Where the rank was when killed: still in the host's namespace (before its set-up or
    waiting for another rank's), holding the step's set-up lock (building), or in a namespace
    of its own without it (joined, or past its set-up)."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/mnt")
        with open("/proc/locks") as f:
            holds = any(l.split()[1] == "FLOCK" and l.split()[4] == str(pid) for l in f if len(l.split()) > 4)
    except OSError:
        return "gone"
    if holds:
        return "building"
    return "host-ns" if ns == host_ns else "own-ns"


def snapshot(state_dir, runtime_dir, keep):
    def mounts():
        with open("/proc/self/mountinfo") as f:
            return sorted(" ".join(l.split()[2:]) for l in f)

    def ls(d):
        try:
            return sorted(os.listdir(d))
        except OSError:
            return []

    return (mounts(), ls(state_dir), ls(runtime_dir), [n for n in ls("/tmp") if n not in keep])


def user_processes(uid):
    """The user's live processes (zombies left to init are not: srun's forked helper becomes one)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
                if stat.rsplit(")", 1)[1].split()[0] != "Z" and real_uid(d) == uid:
                    out.append(stat.split(")")[0].replace(" (", ":"))
            except OSError:
                pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--user", default=os.environ.get("SOCKER_TEST_USER", "smpi-test"))
    ap.add_argument("--bin", default=os.environ.get("SOCKER_BIN", "/usr/bin/socker-mpi"))
    ap.add_argument("--image", default=os.environ.get("SOCKER_TEST_IMAGE", "demo"))
    ap.add_argument("--state-dir", default="/run/socker-mpi")
    ap.add_argument("--runtime-dir", default="/var/lib/socker-mpi/mnt")
    ap.add_argument("--max-delay-ms", type=float, default=6.0, help="latest moment of the kill after the first launcher is seen")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--report", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    import pwd

    uid = pwd.getpwnam(a.user).pw_uid
    rnd = random.Random(a.seed)
    host_ns = os.readlink("/proc/self/ns/mnt")
    keep = set(os.listdir("/tmp"))
    before = snapshot(a.state_dir, a.runtime_dir, keep)
    # One allocation held for the whole loop: the steps never wait in the queue behind other jobs
    # (a wait would look like a hang).
    alloc = subprocess.run(["runuser", "-u", a.user, "--", "salloc", "--no-shell", "-O", "-n", str(a.ranks),
                            "-J", "killsetup", "-t", "60"], cwd="/tmp", capture_output=True, text=True, timeout=600)
    m = re.search(r"Granted job allocation (\d+)", alloc.stdout + alloc.stderr)
    if alloc.returncode != 0 or not m:
        m = None
        out = subprocess.run(["squeue", "-h", "-u", a.user, "-n", "killsetup", "-o", "%i"], capture_output=True,
                             text=True).stdout.split()
        if out:
            jobid = out[-1]
        else:
            print("kill_during_setup: could not get an allocation: " + (alloc.stdout + alloc.stderr).strip())
            return 1
    else:
        jobid = m.group(1)
    cmd = ["runuser", "-u", a.user, "--", "srun", f"--jobid={jobid}", "-O", "-n", str(a.ranks), a.bin, a.image,
           "/bin/sh", "-c", "echo ran-$SLURM_PROCID"]
    try:
        return loop(a, cmd, uid, rnd, host_ns, keep, before)
    finally:
        subprocess.run(["scancel", jobid])


def loop(a, cmd, uid, rnd, host_ns, keep, before):
    counts = {"steps": 0, "killed": 0, "missed": 0, "hung": 0, "bad": 0, "leftover": 0, "ran": 0, "failed-clearly": 0}
    phases = {}
    problems = []
    t_start = time.time()
    for i in range(1, a.steps + 1):
        p = subprocess.Popen(cmd, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        victim = victim_rank = None
        deadline = time.time() + 10
        while time.time() < deadline and p.poll() is None:
            if launchers(uid):
                # Every other step aims at the rank that builds the container (holds the step's
                # set-up lock), at a random moment of its build; the others at any launcher.
                aim_builder = i % 2 == 0
                until = time.time() + rnd.uniform(0, a.max_delay_ms) / 1000.0
                live = []
                while True:
                    live = launchers(uid)
                    if aim_builder:
                        building = [v for v in live if phase_of(v, host_ns) == "building"]
                        if building and time.time() >= until:
                            live = building
                            break
                        if not live or time.time() > until + 0.05:
                            break
                    elif time.time() >= until or not live:
                        break
                if live:
                    victim = rnd.choice(live)
                    victim_rank = rank_of(victim)
                    phase = phase_of(victim, host_ns)
                    try:
                        os.kill(victim, signal.SIGKILL)
                        phases[phase] = phases.get(phase, 0) + 1
                    except ProcessLookupError:
                        victim = None
                break
            time.sleep(0.0002)
        if victim is None:
            counts["missed"] += 1
        else:
            counts["killed"] += 1
        try:
            out, _ = p.communicate(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            counts["hung"] += 1
            problems.append(f"step {i}: srun did not end within {a.timeout}s")
            p.kill()
            out, _ = p.communicate()
        counts["steps"] += 1
        if victim is not None and victim_rank is None:  # its environment was not readable: srun says
            m = re.search(r"task (\d+): Killed", out)
            victim_rank = int(m.group(1)) if m else None
        # Every rank but the victim: ran, or said why (one line naming its rank).
        for r in range(a.ranks):
            if victim is not None and r == victim_rank:
                continue
            if re.search(rf"^ran-{r}$", out, re.M):
                counts["ran"] += 1
            elif re.search(rf"^socker-mpi\[rank {r}\]: \S", out, re.M):
                counts["failed-clearly"] += 1
                problems.append(f"step {i}: rank {r} failed: " + re.search(rf"^socker-mpi\[rank {r}\]: .*$", out, re.M).group(0))
            else:
                counts["bad"] += 1
                problems.append(f"step {i}: rank {r} neither ran nor said why; output:\n" + out)
        # No process of the user left (Slurm ends the step's processes with the step).
        for _ in range(50):
            if not user_processes(uid):
                break
            time.sleep(0.02)
        else:
            counts["hung"] += 1
            problems.append(f"step {i}: processes of {a.user} left: {user_processes(uid)}")
        now = snapshot(a.state_dir, a.runtime_dir, keep)
        if now != before:
            counts["leftover"] += 1
            problems.append(f"step {i}: left behind: mounts {set(now[0]) ^ set(before[0])}, state {now[1]}, "
                            f"runtime {now[2]}, /tmp {now[3]}")
            before = now  # report each leftover once
        if a.report and i % a.report == 0:
            print(f"kill_during_setup: {i}/{a.steps} steps, {counts}, kill moments {phases}, "
                  f"{(time.time() - t_start):.0f}s", flush=True)
    print("kill_during_setup: result")
    print(f"  steps {counts['steps']} of {a.ranks} ranks; SIGKILL sent in {counts['killed']} "
          f"(no launcher left to kill in {counts['missed']})")
    print(f"  kill moments: {phases}")
    print(f"  hung steps or ranks: {counts['hung']}; steps leaving something behind: {counts['leftover']}")
    print(f"  other ranks: ran {counts['ran']}, failed with a clear message {counts['failed-clearly']}, "
          f"neither {counts['bad']}")
    for pr in problems[:20]:
        print("  problem: " + pr)
    ok = counts["hung"] == 0 and counts["leftover"] == 0 and counts["bad"] == 0
    print("kill_during_setup: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
