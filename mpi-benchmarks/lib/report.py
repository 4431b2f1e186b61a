"""Summaries, CSV files, gnuplot plots and RESULTS.md for mpi-benchmarks/run.

Everything here works from the raw CSV files and meta.json in the results directory, so
`run --report-only` can regenerate the report without measuring again."""

import csv
import json
import math
import os
import statistics
import subprocess
import tempfile

LIB = os.path.dirname(os.path.abspath(__file__))

# Targets from issue 7.
T_LAT8 = 1.03        # latency ratio socker-mpi/native at 8 B, at most
T_BW1M = 0.97        # bandwidth ratio at 1 MiB, at least
T_HPL = 0.98         # HPL Gflop/s ratio, at least
T_LAUNCH = 1.05      # socker-mpi step launch / native srun at 1 and 64 ranks, at most
ISSUE7_COUNTS = (1, 2, 64)   # rank counts (one node) the issue-7 targets were set on

# Targets from issue 13 (one container per node and step: ranks after the first join it).
T13_JOIN_MS = 1.5    # in-step launch of a joining rank (median), at most
T13_STEP = 1.05      # whole-step launch / native at every rank count, at most
T13_MTC = 0.8        # MTC tasks/s / native, at least
PEERS = ["ch-run", "crun", "podman", "docker"]
ROOT_LAUNCHERS = {"native (root)", "crun", "podman", "docker"}   # compared with native (root)

MICRO_ORDER = ["latency", "bw", "bibw", "allreduce", "alltoall", "init"]
ENGINE = "socker-mpi-docker"     # socker-mpi --engine=docker (issue 16): socker-mpi itself, not a peer
LAUNCH_ORDER = ["native", "socker-mpi", "spank", ENGINE, "ch-run", "native (root)", "crun", "podman",
                "docker"]
INSTEP_CASES = ["no container", "first rank", "joining rank", "own container"]
BIGGER_IS_BETTER = {"bw", "bibw"}


# --------------------------------------------------------------------------------------------
# small helpers

def med(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else None


def quartiles(xs):
    xs = sorted(xs)
    if len(xs) < 2:
        return (xs[0], xs[0]) if xs else (None, None)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt(x, nd=3):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 10:
        return f"{x:.2f}"
    return f"{x:.{nd}f}"


def size_label(n):
    n = int(n)
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, fields, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def r4(x):
    return None if x is None else float(f"{x:.6g}")


# --------------------------------------------------------------------------------------------
# summaries (raw CSV -> summary CSV)

def summarize_micro(raw, mode="socker-mpi"):
    """micro_raw rows -> one row per (benchmark, size): medians, ratio `mode` / native, spread
    (the socker_* columns are `mode`'s: socker-mpi, or spank for the SPANK plugin)."""
    groups = {}
    for r in raw:
        if r["mode"] not in ("native", mode):
            continue
        key = (r["benchmark"], int(r["size_bytes"]), r["unit"])
        groups.setdefault(key, {"native": [], mode: []})[r["mode"]].append(float(r["value"]))
    if not any(g[mode] for g in groups.values()):
        return []
    rows = []
    for (b, size, unit), g in sorted(groups.items(),
                                     key=lambda kv: (MICRO_ORDER.index(kv[0][0])
                                                     if kv[0][0] in MICRO_ORDER else 99, kv[0][1])):
        n, s = g["native"], g[mode]
        mn, ms = med(n), med(s)
        rows.append({"benchmark": b, "size_bytes": size, "unit": unit,
                     "native_median": r4(mn), "socker_median": r4(ms), "ratio": r4(ratio(ms, mn)),
                     "native_min": r4(min(n)) if n else None, "native_max": r4(max(n)) if n else None,
                     "socker_min": r4(min(s)) if s else None, "socker_max": r4(max(s)) if s else None,
                     "native_runs": len(n), "socker_runs": len(s)})
    return rows


MICRO_FIELDS = ["benchmark", "size_bytes", "unit", "native_median", "socker_median", "ratio",
                "native_min", "native_max", "socker_min", "socker_max", "native_runs", "socker_runs"]


def summarize_netpipe(raw):
    groups = {}
    for r in raw:
        key = int(r["size_bytes"])
        g = groups.setdefault(key, {"native": ([], []), "socker-mpi": ([], [])})
        g[r["mode"]][0].append(float(r["mbytes_per_s"]))
        g[r["mode"]][1].append(float(r["latency_us"]))
    rows = []
    for size in sorted(groups):
        g = groups[size]
        nb, ns = med(g["native"][0]), med(g["socker-mpi"][0])
        nl, sl = med(g["native"][1]), med(g["socker-mpi"][1])
        rows.append({"size_bytes": size, "native_MBps": r4(nb), "socker_MBps": r4(ns),
                     "bw_ratio": r4(ratio(ns, nb)), "native_us": r4(nl), "socker_us": r4(sl),
                     "time_ratio": r4(ratio(sl, nl)),
                     "native_runs": len(g["native"][0]), "socker_runs": len(g["socker-mpi"][0])})
    return rows


NETPIPE_FIELDS = ["size_bytes", "native_MBps", "socker_MBps", "bw_ratio", "native_us",
                  "socker_us", "time_ratio", "native_runs", "socker_runs"]


def nodes_of(r):
    """A launch row's node count (1 in result files written before the column existed)."""
    return int(r.get("nodes") or 1)


def lorder(launcher):
    return LAUNCH_ORDER.index(launcher) if launcher in LAUNCH_ORDER else 99


def count_label(n, nodes=1):
    """"1 rank", "64 ranks", "64 ranks on 4 nodes"."""
    return f"{n} rank{'s' if int(n) > 1 else ''}" + (f" on {nodes} nodes" if int(nodes) > 1 else "")


def summarize_launch(raw):
    groups = {}
    fails = {}
    for r in raw:
        key = (r["launcher"], int(r["ranks"]), nodes_of(r))
        if r["ok"] != "1":
            fails[key] = fails.get(key, 0) + 1
            continue
        if r["warmup"] == "1":
            continue
        groups.setdefault(key, []).append(float(r["seconds"]) * 1000.0)
    keys = set(groups) | set(fails)
    base = {(k[1], k[2]): med(v) for k, v in groups.items() if k[0] == "native"}
    rows = []
    for (l, n, nodes) in sorted(keys, key=lambda k: (lorder(k[0]), k[2], k[1])):
        xs = groups.get((l, n, nodes), [])
        q1, q3 = quartiles(xs) if xs else (None, None)
        m = med(xs)
        rows.append({"launcher": l, "ranks": n, "runs": len(xs), "failed": fails.get((l, n, nodes), 0),
                     "median_ms": r4(m), "q1_ms": r4(q1), "q3_ms": r4(q3),
                     "min_ms": r4(min(xs)) if xs else None, "max_ms": r4(max(xs)) if xs else None,
                     "ratio_to_native": r4(ratio(m, base.get((n, nodes)))), "nodes": nodes})
    return rows


LAUNCH_FIELDS = ["launcher", "ranks", "runs", "failed", "median_ms", "q1_ms", "q3_ms", "min_ms",
                 "max_ms", "ratio_to_native", "nodes"]


def launch_counts(launch):
    """The (ranks, nodes) columns of the launch table: one node first, then by ranks."""
    return sorted({(int(r["ranks"]), nodes_of(r)) for r in launch}, key=lambda k: (k[1], k[0]))


def native_of(launcher):
    return "native (root)" if launcher in ROOT_LAUNCHERS else "native"


def summarize_instep(raw):
    """instep_raw rows (one per hyperfine run) -> one row per (launcher, case)."""
    groups = {}
    for r in raw:
        if str(r.get("ok", "1")) != "1":
            continue
        groups.setdefault((r["launcher"], r["case"]), []).append(float(r["ms"]))
    base = {l: med(v) for (l, c), v in groups.items() if c == "no container"}
    rows = []
    for (l, c) in sorted(groups, key=lambda k: (lorder(k[0]), INSTEP_CASES.index(k[1])
                                                if k[1] in INSTEP_CASES else 99)):
        xs = groups[(l, c)]
        m = med(xs)
        rows.append({"launcher": l, "case": c, "runs": len(xs), "median_ms": r4(m),
                     "mean_ms": r4(statistics.fmean(xs)),
                     "stddev_ms": r4(statistics.stdev(xs)) if len(xs) > 1 else None,
                     "min_ms": r4(min(xs)), "max_ms": r4(max(xs)),
                     "ratio_to_native": r4(ratio(m, base.get(native_of(l))))})
    return rows


INSTEP_FIELDS = ["launcher", "case", "runs", "median_ms", "mean_ms", "stddev_ms", "min_ms", "max_ms",
                 "ratio_to_native"]


def summarize_mtc(raw):
    """mtc_raw rows (one per block of sequential tasks) -> tasks/s per launcher."""
    tot = {}
    for r in raw:
        if str(r.get("ok", "1")) != "1":
            continue
        t = tot.setdefault(r["launcher"], [0, 0.0])
        t[0] += int(r["tasks"])
        t[1] += float(r["seconds"])
    rate = {l: (n / s if s > 0 else None) for l, (n, s) in tot.items()}
    rows = []
    for l in sorted(tot, key=lorder):
        n, sec = tot[l]
        rows.append({"launcher": l, "tasks": n, "seconds": r4(sec), "tasks_per_s": r4(rate[l]),
                     "ratio_to_native": r4(ratio(rate[l], rate.get(native_of(l))))})
    return rows


MTC_FIELDS = ["launcher", "tasks", "seconds", "tasks_per_s", "ratio_to_native"]
MOUNTS_FIELDS = ["launcher", "ranks", "ok", "ranks_seen", "namespaces", "mounts",
                 "mounts_per_namespace", "other_namespaces"]


def summarize_hpl(raw):
    out = {}
    for mode in ("native", "socker-mpi"):
        xs = [float(r["gflops"]) for r in raw if r["mode"] == mode and r["passed"] == "1"]
        ts = [float(r["time_s"]) for r in raw if r["mode"] == mode and r["passed"] == "1"]
        out[mode] = {"runs": len(xs), "failed": sum(1 for r in raw if r["mode"] == mode
                                                    and r["passed"] != "1"),
                     "gflops": med(xs), "min": min(xs) if xs else None,
                     "max": max(xs) if xs else None, "time_s": med(ts)}
    out["ratio"] = ratio(out["socker-mpi"]["gflops"], out["native"]["gflops"])
    return out


# --------------------------------------------------------------------------------------------
# plots

def _gnuplot(script, png, **params):
    args = []
    for k, v in params.items():
        args.append(f"{k}='{v}'" if isinstance(v, str) else f"{k}={v}")
    r = subprocess.run(["gnuplot", "-e", "; ".join(args), os.path.join(LIB, script)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        raise RuntimeError(f"gnuplot {script} failed: {r.stderr.strip()[-500:]}")


def _dat(path, header, rows):
    with open(path, "w") as f:
        f.write(" ".join(f'"{h}"' for h in header) + "\n")
        for r in rows:
            f.write(" ".join("?" if v is None else (f'"{v}"' if isinstance(v, str) else f"{v:.6g}")
                             for v in r) + "\n")


def make_plots(outdir, micro, netpipe, launch, log=print, instep=(), mtc=()):
    """Writes the PNGs into outdir; returns {name: path}."""
    made = {}
    tmp = tempfile.mkdtemp(prefix="smpi-plots.")
    try:
        def series(bench, key):
            return {int(r["size_bytes"]): num(r[key]) for r in micro if r["benchmark"] == bench}

        def sizes_plot(name, title, ylab, cols, **extra):
            allsizes = sorted({s for _, d in cols for s in d})
            if not allsizes:
                return
            rows = [[s] + [d.get(s) for _, d in cols] for s in allsizes]
            dat = os.path.join(tmp, name + ".dat")
            _dat(dat, ["size"] + [t for t, _ in cols], rows)
            out = os.path.join(outdir, name + ".png")
            _gnuplot("plot_sizes.gp", out, data=dat, out=out, ttl=title, ylab=ylab,
                     ncols=len(cols) + 1, **extra)
            made[name] = out

        sizes_plot("latency", "Ping-pong latency (smpi-bench latency, 2 ranks, one node; median)",
                   "one-way latency (µs)",
                   [("native", series("latency", "native_median")),
                    ("socker-mpi", series("latency", "socker_median"))])
        sizes_plot("bandwidth", "Bandwidth (smpi-bench bw and bibw, 2 ranks, one node; median)",
                   "bandwidth (MB/s, 10^6 B/s)",
                   [("bw native", series("bw", "native_median")),
                    ("bw socker-mpi", series("bw", "socker_median")),
                    ("bibw native", series("bibw", "native_median")),
                    ("bibw socker-mpi", series("bibw", "socker_median"))])
        sizes_plot("collectives", "Collectives (smpi-bench, 2 ranks; median time per call)",
                   "time per call (µs)",
                   [("allreduce native", series("allreduce", "native_median")),
                    ("allreduce socker-mpi", series("allreduce", "socker_median")),
                    ("alltoall native", series("alltoall", "native_median")),
                    ("alltoall socker-mpi", series("alltoall", "socker_median"))])
        if netpipe:
            sizes_plot("netpipe", "NetPIPE 3.7 (Debian NPopenmpi, 2 ranks; median throughput)",
                       "throughput (MB/s, 10^6 B/s)",
                       [("NetPIPE native", {int(r["size_bytes"]): num(r["native_MBps"]) for r in netpipe}),
                        ("NetPIPE socker-mpi", {int(r["size_bytes"]): num(r["socker_MBps"]) for r in netpipe})])
        # ratio plot
        cols = [(b, series(b, "ratio")) for b in ("latency", "bw", "bibw", "allreduce", "alltoall")]
        allsizes = sorted({s for _, d in cols for s in d})
        if allsizes:
            dat = os.path.join(tmp, "ratio.dat")
            _dat(dat, ["size"] + [t for t, _ in cols],
                 [[s] + [d.get(s) for _, d in cols] for s in allsizes])
            out = os.path.join(outdir, "ratio.png")
            _gnuplot("plot_ratio.gp", out, data=dat, out=out, ncols=len(cols) + 1)
            made["ratio"] = out
        # launch bar chart
        if launch:
            counts = launch_counts(launch)
            names = [l for l in LAUNCH_ORDER if any(r["launcher"] == l for r in launch)]
            names += sorted({r["launcher"] for r in launch} - set(names))
            get = {(r["launcher"], int(r["ranks"]), nodes_of(r)): num(r["median_ms"]) for r in launch}
            dat = os.path.join(tmp, "launch.dat")
            _dat(dat, ["launcher"] + [count_label(n, k) for n, k in counts],
                 [[l] + [get.get((l, n, k)) for n, k in counts] for l in names])
            out = os.path.join(outdir, "launch.png")
            _gnuplot("plot_launch.gp", out, data=dat, out=out, ncols=len(counts) + 1)
            made["launch"] = out
        if instep:
            dat = os.path.join(tmp, "instep.dat")
            _dat(dat, ["launcher", "median (ms)"],
                 [[r["launcher"] + ("" if r["case"] in ("no container", "own container")
                                    else f" {r['case']}"), num(r["median_ms"])] for r in instep])
            out = os.path.join(outdir, "instep.png")
            _gnuplot("plot_launch.gp", out, data=dat, out=out, ncols=2, ymin=0.1, lfmt="%.2f",
                     ttl="One launch of /bin/true inside a job step (hyperfine; median; lower is better)",
                     ylab="launch time (ms, log scale)",
                     xlab="launcher (socker-mpi: a first rank builds the container, a joining rank setns)")
            made["instep"] = out
        if mtc:
            dat = os.path.join(tmp, "mtc.dat")
            _dat(dat, ["launcher", "tasks/s"],
                 [[f"{r['launcher']} ({r['tasks']})", num(r["tasks_per_s"])] for r in mtc])
            out = os.path.join(outdir, "mtc.png")
            _gnuplot("plot_launch.gp", out, data=dat, out=out, ncols=2, ymin=0, logy=0, lfmt="%.2f",
                     ttl="Many-task throughput: sequential srun -n 1 LAUNCHER /bin/true steps (higher is better)",
                     ylab="tasks per second", xlab="launcher (tasks run)")
            made["mtc"] = out
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    return made


# --------------------------------------------------------------------------------------------
# RESULTS.md

def _table(header, rows, align=None):
    align = align or ["---"] + ["--:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        out.append("| " + " | ".join("–" if c is None else str(c) for c in r) + " |")
    return "\n".join(out)


def _verdict(ok):
    return "**met**" if ok else ("**not met**" if ok is False else "not measured")


def evaluate(micro, hpl, launch, memory):
    """The issue's targets -> list of (target, measured, verdict bool/None)."""
    res = []
    get = {(r["benchmark"], int(r["size_bytes"])): r for r in micro}
    r = get.get(("latency", 8))
    q = num(r["ratio"]) if r else None
    res.append((f"latency ratio socker-mpi/native at 8 B ≤ {T_LAT8}",
                f"{fmt(q, 4)} ({fmt(num(r['socker_median']))} vs {fmt(num(r['native_median']))} µs)"
                if q else "–", None if q is None else q <= T_LAT8))
    r = get.get(("bw", 1 << 20))
    q = num(r["ratio"]) if r else None
    res.append((f"bandwidth ratio at 1 MiB ≥ {T_BW1M}",
                f"{fmt(q, 4)} ({fmt(num(r['socker_median']))} vs {fmt(num(r['native_median']))} MB/s)"
                if q else "–", None if q is None else q >= T_BW1M))
    q = hpl.get("ratio") if hpl else None
    res.append((f"HPL ratio ≥ {T_HPL}",
                f"{fmt(q, 4)} ({fmt(hpl['socker-mpi']['gflops'])} vs {fmt(hpl['native']['gflops'])} Gflop/s)"
                if q else "–", None if q is None else q >= T_HPL))
    # (one node, the issue's rank counts: the rows added later do not change these targets)
    launch = [r for r in launch if nodes_of(r) == 1 and int(r["ranks"]) in ISSUE7_COUNTS]
    lg = {(r["launcher"], int(r["ranks"])): num(r["median_ms"]) for r in launch}
    for n in (1, 64):
        s, b = lg.get(("socker-mpi", n)), lg.get(("native", n))
        q = ratio(s, b)
        res.append((f"socker-mpi step launch ≤ {T_LAUNCH}× native srun at {n} rank{'s' if n > 1 else ''}",
                    f"{fmt(q, 3)}× ({fmt(s)} vs {fmt(b)} ms)" if q else "–",
                    None if q is None else q <= T_LAUNCH))
    alts = sorted({r["launcher"] for r in launch} - {"native", "native (root)", "socker-mpi", "spank", ENGINE},
                  key=lambda l: LAUNCH_ORDER.index(l) if l in LAUNCH_ORDER else 99)
    worse = []
    compared = 0
    for a in alts:
        for n in sorted({int(r["ranks"]) for r in launch}):
            s, x = lg.get(("socker-mpi", n)), lg.get((a, n))
            if s is None or x is None:
                continue
            compared += 1
            if not s < x:
                worse.append(f"{a} at {n} ({fmt(x)} ms ≤ {fmt(s)} ms)")
    res.append(("socker-mpi step launch faster than every alternative measured",
                (f"{compared} comparisons ({', '.join(alts)} × rank counts)"
                 + (f"; slower than: {'; '.join(worse)}" if worse else "; faster in all"))
                if compared else "no alternative measured",
                None if not compared else not worse))
    m = [r for r in memory if r["launcher"] == "socker-mpi"]
    if m and m[0]["ok"] == "1":
        n = int(m[0]["launcher_processes"])
        res.append(("zero resident launcher processes while the rank runs (socker-mpi)",
                    f"{n} process(es), {fmt(num(m[0]['launcher_rss_kib']) / 1024)} MiB RSS", n == 0))
    else:
        res.append(("zero resident launcher processes while the rank runs (socker-mpi)", "–", None))
    return res


def evaluate13(instep, launch, mtc, mounts, skipped=None):
    """Issue 13's targets -> list of (target, measured, verdict bool/None)."""
    skipped = skipped or {}
    res = []
    ins = {(r["launcher"], r["case"]): num(r["median_ms"]) for r in instep}
    j, f = ins.get(("socker-mpi", "joining rank")), ins.get(("socker-mpi", "first rank"))
    c, n = ins.get(("ch-run", "own container")), ins.get(("native", "no container"))
    res.append((f"joining rank ≤ {T13_JOIN_MS} ms in-step (socker-mpi joining rank, median)",
                f"{fmt(j)} ms (first rank {fmt(f)} ms, native /bin/true {fmt(n)} ms)"
                if j is not None else "–", None if j is None else j <= T13_JOIN_MS))
    res.append(("first rank faster than ch-run in-step (median)",
                f"socker-mpi first rank {fmt(f)} ms vs ch-run {fmt(c)} ms"
                + (f" ({fmt(ratio(f, c), 3)}×)" if f is not None and c else "")
                if f is not None and c is not None else "–",
                None if f is None or c is None else f < c))
    lg = {(r["launcher"], int(r["ranks"]), nodes_of(r)): num(r["median_ms"]) for r in launch}
    counts = [(k, 1) for k in (1, 2, 16, 64)] + [(64, 4)]
    counts += [k for k in launch_counts(launch) if k not in counts]
    for k, nodes in counts:
        s, b = lg.get(("socker-mpi", k, nodes)), lg.get(("native", k, nodes))
        q = ratio(s, b)
        why = ""
        if q is None and nodes > 1:
            why = next((v for key, v in skipped.items() if "nodes" in key), "")
        res.append((f"whole-step launch ≤ {T13_STEP}× native at {count_label(k, nodes)}",
                    f"{fmt(q, 3)}× ({fmt(s)} vs {fmt(b)} ms)" if q else (why or "–"),
                    None if q is None else q <= T13_STEP))
    worse, compared, peers_seen = [], 0, []
    for p in PEERS:
        for k, nodes in counts:
            s, x = lg.get(("socker-mpi", k, nodes)), lg.get((p, k, nodes))
            if s is None or x is None:
                continue
            compared += 1
            if p not in peers_seen:
                peers_seen.append(p)
            if not s < x:
                worse.append(f"{p} at {count_label(k, nodes)} ({fmt(x)} ms ≤ {fmt(s)} ms)")
    res.append((f"whole-step launch faster than every peer ({', '.join(PEERS)}) at every rank count",
                (f"{compared} comparisons ({', '.join(peers_seen)} × rank counts)"
                 + (f"; not faster than: {'; '.join(worse)}" if worse else "; faster in all"))
                if compared else "no peer measured", None if not compared else not worse))
    mt = {r["launcher"]: r for r in mtc}
    s = num(mt["socker-mpi"]["tasks_per_s"]) if "socker-mpi" in mt else None
    b = num(mt["native"]["tasks_per_s"]) if "native" in mt else None
    q = ratio(s, b)
    res.append((f"MTC tasks/s ≥ {T13_MTC}× native",
                f"{fmt(q, 3)}× ({fmt(s)} vs {fmt(b)} tasks/s, {mt['socker-mpi']['tasks']} tasks each)"
                if q else "–", None if q is None else q >= T13_MTC))
    peers = [(p, num(mt[p]["tasks_per_s"]), mt[p]["tasks"]) for p in PEERS if p in mt]
    below = [f"{p} {fmt(x)} tasks/s" for p, x, _ in peers if s is not None and x is not None and not s > x]
    res.append(("MTC tasks/s above every peer",
                (f"socker-mpi {fmt(s)} tasks/s vs " + ", ".join(f"{p} {fmt(x)} ({t} tasks)" for p, x, t in peers)
                 + (f"; not above: {', '.join(below)}" if below else ""))
                if s is not None and peers else "–",
                None if s is None or not peers else not below))
    mo = {r["launcher"]: r for r in mounts if r.get("ok") == "1"}
    m = mo.get("socker-mpi")
    others = "; ".join(f"{l}: {mo[l]['namespaces']} namespaces, {mo[l]['mounts']} mounts"
                       for l in PEERS if l in mo)
    res.append(("mounts for a 64-rank step: one container's worth (1 mount namespace)",
                (f"socker-mpi: {m['namespaces']} namespace(s), {m['mounts']} mounts"
                 + (f" ({others})" if others else "")) if m else "–",
                None if not m else int(m["namespaces"]) == 1))
    return res


PSI_NOISY = 15.0     # % of a run's wall time with a task waiting for a CPU (quiet node: 4-8 %)


def evaluate14(micro_spank, launch):
    """Issue 14 targets: the SPANK plugin launches steps as fast as the setuid launcher or
    faster, and runs MPI at native speed."""
    res = []
    lg = {(r["launcher"], int(r["ranks"]), nodes_of(r)): num(r["median_ms"]) for r in launch}
    for n in (1, 2, 64):
        s, w, b = lg.get(("spank", n, 1)), lg.get(("socker-mpi", n, 1)), lg.get(("native", n, 1))
        res.append((f"spank step launch ≤ socker-mpi's at {count_label(n)}",
                    f"spank {fmt(s)} ms, socker-mpi {fmt(w)} ms, native {fmt(b)} ms"
                    + (f" (spank/native {fmt(ratio(s, b), 3)})" if s and b else ""),
                    None if s is None or w is None else s <= w * 1.02))
    ms = {(r["benchmark"], int(r["size_bytes"])): num(r["ratio"]) for r in micro_spank}
    lat, bw = ms.get(("latency", 8)), ms.get(("bw", 1 << 20))
    res.append((f"spank latency ratio at 8 B ≤ {T_LAT8}", fmt(lat, 4), None if lat is None else lat <= T_LAT8))
    res.append(("spank bandwidth ratio at 1 MiB ≥ 0.97", fmt(bw, 4), None if bw is None else bw >= 0.97))
    return res


def pressure_note(runs):
    """One paragraph on how quiet the node was during the MPI runs (runs.csv)."""
    xs = [(r, num(r["cpu_pressure_pct"])) for r in runs if num(r.get("cpu_pressure_pct")) is not None]
    if not xs:
        return "CPU pressure during the MPI runs: not available (no /proc/pressure/cpu).\n"
    noisy = [(r, p) for r, p in xs if p > PSI_NOISY]
    ps = [p for _, p in xs]
    s = (f"**Quiet node?** CPU pressure (PSI `some`: share of a run's wall time in which a task "
         f"waited for a CPU) during the {len(xs)} MPI runs: median {med(ps):.1f} %, max "
         f"{max(ps):.1f} % ([`runs.csv`](RUNS)). ")
    if noisy:
        phases = {}
        for r, _ in noisy:
            phases[r["phase"]] = phases.get(r["phase"], 0) + 1
        s += (f"{len(noisy)} run(s) above {PSI_NOISY:g} % ("
              + ", ".join(f"{k}: {v}" for k, v in sorted(phases.items()))
              + "): something outside the job competed with the ranks for the cores, so those "
              "numbers are not quiet-machine numbers; rerun on an idle node before judging the "
              "MPI targets.\n")
    else:
        s += f"No run above {PSI_NOISY:g} %: the ranks had the cores to themselves.\n"
    return s


ENGINE_MICRO = [("latency", 8), ("latency", 1024), ("latency", 65536), ("bw", 8192), ("bw", 1 << 20),
                ("bw", 4 << 20), ("bibw", 1 << 20), ("bibw", 4 << 20), ("allreduce", 8),
                ("allreduce", 1 << 20), ("alltoall", 8), ("alltoall", 1 << 20)]


def engine_section(launch, micro, micro_engine, meta, rel):
    """## Engine mode (issue 16): socker-mpi --engine=docker beside in-place socker-mpi, native
    and the docker peer (step launch and micro-benchmarks), with ratios to native."""
    L = []
    add = L.append
    why = meta.get("skipped", {}).get(ENGINE)
    add("## Engine mode (issue 16): `socker-mpi --engine=docker`\n")
    add(f"`{ENGINE}` = `srun … socker-mpi --engine=docker bench CMD`, as the user: the setuid "
        "launcher connects to the run's dockerd (the docker peer's, named by the admin config's "
        "`docker_socket` for the run), drops to the user, and has the engine make **one "
        "container per rank** of its image `bench` (bench.tar imported there, the same "
        "image as every other launcher's) in the rank's Slurm step cgroup, with host PID, IPC and "
        "network (docs/docker.md). In-place socker-mpi builds one container per node and step "
        "itself; the docker peer is `docker run --rm` as root (compared with native `srun` as "
        "root). Same allocation, round robin and runs as the launch table above.\n")
    if why:
        add(f"Not measured: {why}\n")
    counts = [(n, k) for n, k in launch_counts(launch) if k == 1]
    get = {(r["launcher"], int(r["ranks"]), nodes_of(r)): r for r in launch}
    how = {"native": "`srun` alone, as the user", "socker-mpi": "in place (one container per node)",
           ENGINE: "engine mode (dockerd: a container per rank)",
           "native (root)": "`srun` alone, as root", "docker": "`docker run --rm`, as root"}
    names = [l for l in how if any(r["launcher"] == l for r in launch)]
    if any(r["launcher"] == ENGINE for r in launch):
        rows = []
        for l in names:
            row = [l, how[l]]
            for n, k in counts:
                r = get.get((l, n, k))
                if not r or r["median_ms"] in ("", None):
                    row.append(f"failed ({r['failed']})" if r and int(r["failed"]) else "–")
                    continue
                b = get.get(("native" if l == "native (root)" else native_of(l), n, k))
                q = ratio(num(r["median_ms"]), num(b["median_ms"])) if b else None
                cell = f"{fmt(num(r['median_ms']))} ({fmt(q, 3)}×)"
                if int(r["failed"]):
                    cell += f", {r['failed']} failed"
                row.append(cell)
            rows.append(row)
        add("**Job-step launch** of `/bin/true`, median ms (× native `srun` as the same user: the "
            "docker peer × native (root), the others × native as the user):\n")
        add(_table(["launcher", "mode", *[f"{count_label(n)}" for n, _ in counts]], rows,
                   ["---", "---"] + ["--:"] * len(counts)))
        add("")
        med_of = {(l, n): num(get[(l, n, 1)]["median_ms"]) for l in names for n, _ in counts
                  if (l, n, 1) in get}
        parts = []
        for other in ("socker-mpi", "docker"):
            xs = [f"{count_label(n)} {fmt(ratio(med_of.get((ENGINE, n)), med_of.get((other, n))), 3)}×"
                  for n, _ in counts if med_of.get((ENGINE, n)) and med_of.get((other, n))]
            if xs:
                parts.append(f"{ENGINE} / {other}: " + ", ".join(xs))
        if parts:
            add("; ".join(parts) + ".\n")
        runs = {n: get[(ENGINE, n, 1)]["runs"] for n, _ in counts if (ENGINE, n, 1) in get}
        add(f"{ENGINE} timed runs: " + ", ".join(f"{count_label(n)} {k}" for n, k in runs.items())
            + f" (raw: [`launch_raw.csv`]({rel}/launch_raw.csv)).\n")
    if micro_engine:
        sm = {(r["benchmark"], int(r["size_bytes"])): r for r in micro}
        se = {(r["benchmark"], int(r["size_bytes"])): r for r in micro_engine}
        rows = []
        for b, size in ENGINE_MICRO + [("init", 0)]:
            e = se.get((b, size))
            if not e:
                continue
            s = sm.get((b, size))
            unit = e["unit"]
            scale = 1000.0 if b == "init" else 1.0
            label = "MPI_Init (ms)" if b == "init" else f"{b} ({unit})"

            def v(x):
                return fmt(num(x) / scale) if num(x) is not None else "–"
            rows.append((label, "–" if b == "init" else size_label(size), v(e["native_median"]),
                         f"{v(s['socker_median'])} ({fmt(num(s['ratio']), 3)}×)" if s else "–",
                         f"{v(e['socker_median'])} ({fmt(num(e['ratio']), 3)}×)"))
        n = {int(r["native_runs"]) for r in micro_engine} | {int(r["socker_runs"]) for r in micro_engine}
        modes = [k.split(" ", 1)[1] for k in meta.get("commands", {}) if k.startswith("micro ")]
        modes = modes if ENGINE in modes else ["native", "socker-mpi", ENGINE]
        add(f"**MPI micro-benchmarks**: `smpi-bench`, `srun --mpi=pmix -n 2`, 2 ranks on one node, "
            f"{'/'.join(str(x) for x in sorted(n))} repetitions a mode, {', '.join(modes[:-1])} "
            f"and {modes[-1]} interleaved (the order rotates), medians (× native; for times lower "
            "is better, for bandwidths higher). Every size: "
            f"[`micro_engine.csv`]({rel}/micro_engine.csv) ({ENGINE}), [`micro.csv`]({rel}/micro.csv) "
            f"(socker-mpi), raw runs in [`micro_raw.csv`]({rel}/micro_raw.csv).\n")
        add(_table(["benchmark", "size", "native", "socker-mpi", ENGINE], rows))
        add("")
    return "\n".join(L)


def write_markdown(path, outdir, meta, micro, netpipe, hpl, launch, memory, plots, runs=(),
                   instep=(), mtc=(), mounts=(), micro_spank=(), micro_engine=()):
    rel = os.path.relpath(outdir, os.path.dirname(os.path.abspath(path)))
    cfg = meta.get("config", {})
    L = []
    add = L.append
    mode = "quick (CI smoke run: few repetitions, numbers indicative only)" if cfg.get("quick") \
        else "full"
    add("# socker-mpi benchmark results\n")
    add(f"Generated by `mpi-benchmarks/run{' --quick' if cfg.get('quick') else ''}` on "
        f"{meta.get('started_utc', '?')} ({mode}); the whole run took "
        f"{fmt(meta.get('duration_s'))} s, of which {fmt(meta.get('waited_s', 0))} s waiting for "
        "the node (other users' jobs). Regenerate with one command, as root on the dev "
        f"cluster: `mpi-benchmarks/run` (see [How](#how-it-was-measured)).\n")
    add("## Targets (issue 7)\n")
    rows = [(t, m, _verdict(v)) for t, m, v in evaluate(micro, hpl, launch, memory)]
    add(_table(["target", "measured (median)", "verdict"], rows, ["---", "---", "---"]))
    add("")
    add("## Targets (issue 13)\n")
    add("One container per node and step: the first rank of a step on a node builds it, every "
        "other rank of the step joins it (setns). Sections: [in-step launch](#in-step-launch), "
        "[job-step launch](#job-step-launch-time), [MTC](#many-task-throughput-mtc), "
        "[mounts](#mounts-made-on-the-node-for-a-64-rank-step).\n")
    rows = [(t, m, _verdict(v)) for t, m, v in evaluate13(instep, launch, mtc, mounts,
                                                          meta.get("skipped", {}))]
    add(_table(["target", "measured (median)", "verdict"], rows, ["---", "---", "---"]))
    add("")
    if micro_spank or any(r["launcher"] == "spank" for r in launch):
        add("## Targets (issue 14)\n")
        add("The SPANK plugin (`srun --container-image=bench`): the launcher's pipeline run by "
            "slurmstepd's task before its exec, no program in front of the rank.\n")
        rows = [(t, m, _verdict(v)) for t, m, v in evaluate14(micro_spank, launch)]
        add(_table(["target", "measured (median)", "verdict"], rows, ["---", "---", "---"]))
        add("")
    add(pressure_note(runs).replace("(RUNS)", f"({rel}/runs.csv)"))
    rerun = meta.get("mpi_part_rerun")
    if rerun:  # the MPI part measured again on its own (mpi-benchmarks/run --skip-launch)
        add(f"**MPI part rerun** ({rerun.get('started_utc', '?')}, `{rerun.get('command', '?')}`): "
            f"{rerun.get('why', '')}.\n")
    state = meta.get("state", {})
    add("Machine state (the two cores are shared with other work; numbers that need the other "
        "core idle, such as bandwidth, HPL and 64-rank launches, move with it): "
        + "; ".join(f"{k}: {v}" for k, v in state.items())
        + ". Native and socker-mpi runs are interleaved so that drift hits both.\n")
    add("## Machine and versions\n")
    mach = meta.get("machine", {})
    add(_table(["", ""], [(k, v) for k, v in mach.items()], ["---", "---"]))
    add("")
    ver = meta.get("versions", {})
    add(_table(["component", "version"], [(k, v) for k, v in ver.items()], ["---", "---"]))
    add("")

    # ---- micro
    add("## MPI micro-benchmarks: native vs socker-mpi\n")
    add(f"`smpi-bench` (this repository, OSU-style), 2 ranks on one node, `srun --mpi=pmix -n 2`, "
        f"{cfg.get('micro_reps', '?')} interleaved repetitions per side, each a full sweep "
        f"{cfg.get('micro_sweep', '')}; medians of the repetitions. Ratio = socker-mpi / native "
        "(for times lower is better, for bandwidths higher is better). Every size is in "
        f"[`micro.csv`]({rel}/micro.csv) (raw runs: [`micro_raw.csv`]({rel}/micro_raw.csv)).\n")
    pick = {1, 8, 64, 1024, 8192, 65536, 1 << 20, 4 << 20}
    for b, unit in (("latency", "µs"), ("bw", "MB/s"), ("bibw", "MB/s"), ("allreduce", "µs"),
                    ("alltoall", "µs")):
        rs = [r for r in micro if r["benchmark"] == b and int(r["size_bytes"]) in pick]
        if not rs:
            continue
        add(f"**{b}** ({unit})\n")
        add(_table(["size", "native", "socker-mpi", "ratio", "native min–max", "socker-mpi min–max"],
                   [(size_label(r["size_bytes"]), fmt(num(r["native_median"])),
                     fmt(num(r["socker_median"])), fmt(num(r["ratio"]), 4),
                     f"{fmt(num(r['native_min']))}–{fmt(num(r['native_max']))}",
                     f"{fmt(num(r['socker_min']))}–{fmt(num(r['socker_max']))}") for r in rs]))
        add("")
    rs = [r for r in micro if r["benchmark"] == "init"]
    if rs:
        r = rs[0]
        add(f"**MPI_Init** (max over ranks, ms): native {fmt(num(r['native_median']) / 1000)}, "
            f"socker-mpi {fmt(num(r['socker_median']) / 1000)} (ratio {fmt(num(r['ratio']), 4)}; "
            "measured from the first statement of `main`, i.e. after socker-mpi has exec'd).\n")
    for name, cap in (("latency", "latency vs message size"), ("bandwidth", "bandwidth vs message size"),
                      ("collectives", "allreduce and alltoall"), ("ratio", "socker-mpi / native ratios")):
        if name in plots:
            add(f"![{cap}]({rel}/{name}.png)\n")

    # ---- micro through the SPANK plugin
    if micro_spank:
        add("## MPI micro-benchmarks through the SPANK plugin: native vs `srun --container-image`\n")
        add("The same `smpi-bench` sweep in the same allocation, a third mode interleaved with the two "
            "above (`srun --mpi=pmix -n 2 --container-image=bench /opt/socker/smpi-bench ...`). Ratio = "
            f"spank / native. Every size: [`micro_spank.csv`]({rel}/micro_spank.csv).\n")
        rows = []
        for b in ("latency", "bw", "bibw", "allreduce", "alltoall"):
            for r in micro_spank:
                if r["benchmark"] == b and int(r["size_bytes"]) in {8, 65536, 1 << 20, 4 << 20}:
                    rows.append((b, size_label(r["size_bytes"]), fmt(num(r["native_median"])),
                                 fmt(num(r["socker_median"])), fmt(num(r["ratio"]), 4)))
        add(_table(["benchmark", "size", "native", "spank", "ratio"], rows))
        add("")

    # ---- HPL and NetPIPE
    add("## HPL (Debian hpcc) and NetPIPE (Debian netpipe-openmpi)\n")
    if hpl and (hpl["native"]["runs"] or hpl["socker-mpi"]["runs"]):
        add(f"HPL from `hpcc` {ver.get('hpcc', '')}: N={cfg.get('hpl_n')}, NB={cfg.get('hpl_nb')}, "
            f"P×Q=1×2, 2 ranks, {cfg.get('hpl_reps')} run(s) per side, interleaved (hpcc runs its whole "
            "suite; `hpccmemf.txt` shrinks the other tests so that a run takes seconds). "
            f"Raw: [`hpl.csv`]({rel}/hpl.csv).\n")
        add(_table(["", "runs (failed)", "HPL Gflop/s (median)", "min–max", "HPL time (s)"],
                   [(m, f"{hpl[m]['runs']} ({hpl[m]['failed']})", fmt(hpl[m]["gflops"]),
                     f"{fmt(hpl[m]['min'])}–{fmt(hpl[m]['max'])}", fmt(hpl[m]["time_s"]))
                    for m in ("native", "socker-mpi")]))
        add(f"\nRatio socker-mpi / native: **{fmt(hpl['ratio'], 4)}**.\n")
    else:
        add("HPL: not run.\n")
    if netpipe:
        add(f"NetPIPE `NPopenmpi {cfg.get('netpipe_args', '')}`, {cfg.get('netpipe_reps')} "
            f"run(s) per side, interleaved; medians. All sizes: [`netpipe.csv`]({rel}/netpipe.csv).\n")
        rs = [r for r in netpipe if int(r["size_bytes"]) in pick]
        add(_table(["size", "native MB/s", "socker-mpi MB/s", "ratio", "native µs", "socker-mpi µs"],
                   [(size_label(r["size_bytes"]), fmt(num(r["native_MBps"])),
                     fmt(num(r["socker_MBps"])), fmt(num(r["bw_ratio"]), 4),
                     fmt(num(r["native_us"])), fmt(num(r["socker_us"]))) for r in rs]))
        add("")
        if "netpipe" in plots:
            add(f"![NetPIPE throughput]({rel}/netpipe.png)\n")
    else:
        add("NetPIPE: not run.\n")

    # ---- launch
    add("## Job-step launch time\n")
    add("`/bin/true` as one job step inside a Slurm allocation the runner holds (so no step waits "
        "in the queue), per launcher and rank count; the launchers take turns run by run "
        f"(round robin, start rotated each round), {cfg.get('launch_desc', '')}. Times are the wall "
        "time of the whole `srun` command. Ratio = median / median of native `srun` (as the user). "
        f"Raw: [`launch_raw.csv`]({rel}/launch_raw.csv), summary: [`launch.csv`]({rel}/launch.csv).\n")
    counts = launch_counts(launch)
    get = {(r["launcher"], int(r["ranks"]), nodes_of(r)): r for r in launch}
    names = [l for l in LAUNCH_ORDER if any(r["launcher"] == l for r in launch)]
    trows = []
    for l in names:
        row = [l]
        for n, k in counts:
            r = get.get((l, n, k))
            if not r or r["median_ms"] in ("", None):
                row.append("failed" if r and int(r["failed"]) else "–")
                continue
            cell = f"{fmt(num(r['median_ms']))} ({fmt(num(r['ratio_to_native']), 3)}×)"
            if int(r["failed"]):
                cell += f", {r['failed']} failed"
            row.append(cell)
        trows.append(row)
    add(_table(["launcher"] + [f"{count_label(n, k)}: ms (× native)" for n, k in counts], trows))
    add("")
    if any(k > 1 for _, k in counts):
        add(f"The {', '.join(count_label(n, k) for n, k in counts if k > 1)} column: a second dev "
            "cluster of emulated nodes (one slurmd each, in its own UTS namespace, all on this "
            "machine's 2 CPUs), started for the measurement and stopped afterwards; "
            "`srun -N NODES -n RANKS -O`, native, socker-mpi and ch-run as the user.\n")
    add(_table(["launcher", "ranks", "runs", "median ms", "IQR ms", "min–max ms"],
               [(r["launcher"], count_label(r["ranks"], nodes_of(r)), r["runs"], fmt(num(r["median_ms"])),
                 f"{fmt(num(r['q1_ms']))}–{fmt(num(r['q3_ms']))}",
                 f"{fmt(num(r['min_ms']))}–{fmt(num(r['max_ms']))}") for r in launch]))
    add("")
    if "launch" in plots:
        add(f"![launch time per launcher]({rel}/launch.png)\n")
    skipped = meta.get("skipped", {})
    if skipped:
        add("Not measured:\n")
        for k, v in skipped.items():
            add(f"- **{k}**: {v}")
        add("")

    # ---- engine mode (issue 16)
    if micro_engine or any(r["launcher"] == ENGINE for r in launch) or ENGINE in skipped:
        add(engine_section(launch, micro, micro_engine, meta, rel))

    # ---- in-step, MTC, mounts (issue 13)
    add("## In-step launch\n")
    add("One launch of `/bin/true` timed by `hyperfine -N` (no shell) inside one job step "
        "(`srun -n 1 … hyperfine …` in the runner's allocation): no Slurm step creation in the "
        "figure, only what the launcher costs a rank. native: `/bin/true` itself; socker-mpi "
        "first rank: `socker-mpi bench /bin/true` with no other container of the step alive, so "
        "each run builds its own; socker-mpi joining rank: a separate step whose script first "
        "starts `socker-mpi bench /bin/sleep 600 &`, waits until it is in its container (its "
        "mount namespace differs from the script's), checks that a launch joins it, then times "
        "`socker-mpi bench /bin/true` (every run joins the sleeping container), and kills the "
        "sleeper; ch-run, crun, podman, docker: each run its own container. "
        f"{cfg.get('instep_desc', '')} Ratio = median / median of native `/bin/true` measured "
        "the same way (crun, podman, docker: as root, against native as root). "
        f"Raw: [`instep_raw.csv`]({rel}/instep_raw.csv), summary: [`instep.csv`]({rel}/instep.csv).\n")
    if instep:
        add(_table(["launcher", "case", "runs", "median ms", "mean ± sd ms", "min–max ms", "× native"],
                   [(r["launcher"], r["case"], r["runs"], fmt(num(r["median_ms"])),
                     f"{fmt(num(r['mean_ms']))} ± {fmt(num(r['stddev_ms']))}",
                     f"{fmt(num(r['min_ms']))}–{fmt(num(r['max_ms']))}",
                     fmt(num(r["ratio_to_native"]), 3)) for r in instep],
                   ["---", "---", "--:", "--:", "--:", "--:", "--:"]))
        add("")
        if "instep" in plots:
            add(f"![in-step launch time per launcher]({rel}/instep.png)\n")
    else:
        add("In-step launch: not run.\n")
    add("## Many-task throughput (MTC)\n")
    add("Short container tasks one after another in one allocation: each task is its own job "
        "step, `srun -n 1 LAUNCHER /bin/true`, started when the previous one has ended (a shell "
        "loop of `srun`s, as an MTC script would run them). tasks/s = tasks / wall time of the "
        "launcher's whole sequence. The launchers take turns in blocks "
        f"({cfg.get('mtc_desc', '')}) so that drift hits all. crun, podman and docker run as "
        "root and are compared with native `srun` as root, measured the same way. "
        f"Raw: [`mtc_raw.csv`]({rel}/mtc_raw.csv), summary: [`mtc.csv`]({rel}/mtc.csv).\n")
    if mtc:
        add(_table(["launcher", "tasks", "seconds", "tasks/s", "× native"],
                   [(r["launcher"], r["tasks"], fmt(num(r["seconds"])), fmt(num(r["tasks_per_s"])),
                     fmt(num(r["ratio_to_native"]), 3)) for r in mtc]))
        add("")
        heavy = [r for r in mtc if r["launcher"] in ("podman", "docker")]
        light = [r for r in mtc if r["launcher"] not in ("podman", "docker")]
        if heavy and light:
            spt = [num(r["seconds"]) / int(r["tasks"]) for r in heavy if int(r["tasks"])]
            add(f"{' and '.join(r['launcher'] + chr(39) + 's' for r in heavy)} "
                f"rate{'s come' if len(heavy) > 1 else ' comes'} from "
                f"{' and '.join(sorted({r['tasks'] for r in heavy}))} tasks"
                f"{' each' if len(heavy) > 1 else ''} ({fmt(min(spt))}–{fmt(max(spt))} s a task), "
                f"the others' from {' and '.join(sorted({r['tasks'] for r in light}))}.\n")
        if "mtc" in plots:
            add(f"![MTC tasks per second]({rel}/mtc.png)\n")
    else:
        add("MTC: not run.\n")
    add("## Mounts made on the node for a 64-rank step\n")
    add("During one `srun -O -n 64 LAUNCHER /bin/sh -c 'sleep S'` step, while every rank sleeps, "
        "the runner lists the step's processes (descendants of its `slurmstepd`), takes the ranks "
        "(the 64 `sleep`s), and counts the distinct mount namespaces they are in that are not the "
        "host's (`readlink /proc/PID/ns/mnt`); mounts made = sum over those namespaces of the "
        "lines of one member's `/proc/PID/mountinfo`. Other namespaces = further non-host mount "
        "namespaces among the step's other processes (crun: the per-rank `unshare -m` of "
        "`lib/crun-rank.sh`, a workaround for this host's cgroup layout, not counted as mounts). "
        f"Raw: [`mounts.csv`]({rel}/mounts.csv).\n")
    if mounts:
        add(_table(["launcher", "ranks (seen sleeping at once)", "mount namespaces", "mounts made",
                    "mounts per namespace", "other namespaces"],
                   [(r["launcher"], f"{r['ranks']} ({r['ranks_seen']})",
                     r["namespaces"] if r["ok"] == "1" else "failed", r["mounts"],
                     fmt(num(r["mounts_per_namespace"])), r["other_namespaces"]) for r in mounts],
                   ["---", "--:", "--:", "--:", "--:", "--:"]))
        add("")
    else:
        add("Mounts: not run.\n")

    # ---- memory
    add("## Memory the launcher leaves on the node while the rank runs\n")
    add("`srun -n 1 LAUNCHER … sleep S`; while `sleep` runs, the runner lists every process of "
        "the job step (descendants of the step's `slurmstepd`) and every ancestor of the rank up "
        "to init, minus the rank itself: that is what the launcher keeps resident (RSS from "
        "`/proc/PID/status`, PSS from `smaps_rollup`). Daemons a launcher needs (dockerd, "
        "containerd) are listed apart: shared by all containers on the node. "
        f"Raw: [`memory.csv`]({rel}/memory.csv).\n")
    add(_table(["launcher", "resident launcher processes", "RSS MiB", "PSS MiB", "daemons",
                "daemon RSS MiB"],
               [(r["launcher"], r["launcher_processes"] if r["ok"] == "1" else "failed",
                 fmt(num(r["launcher_rss_kib"]) / 1024) if r["ok"] == "1" else "–",
                 fmt(num(r["launcher_pss_kib"]) / 1024) if r["ok"] == "1" and r["launcher_pss_kib"] else "–",
                 r["daemon_names"] or "none",
                 fmt(num(r["daemon_rss_kib"]) / 1024) if r["daemon_rss_kib"] not in ("", "0") else "0")
                for r in memory],
               ["---", "--:", "--:", "--:", "---", "--:"]))
    add("")
    procs = [(r["launcher"], r["launcher_names"]) for r in memory if r["launcher_names"]]
    if procs:
        add("Processes counted: " + "; ".join(f"{l}: {n}" for l, n in procs) + ".\n")

    # ---- method
    add("## How it was measured\n")
    add(f"Command: `{meta.get('command', 'mpi-benchmarks/run')}` (as root; every benchmark and "
        f"every user-level launcher runs as the unprivileged user `{meta.get('user', '?')}` via "
        "setresuid in the runner's child, with a clean login-like environment; crun, podman and "
        "docker need root here and run as root).\n")
    for line in meta.get("method", []):
        add(f"- {line}")
    add("")
    add("Exact command lines (one job step each; `J` = the runner's allocation):\n")
    add("```")
    cmds = meta.get("commands", {})
    width = max((len(k) for k in cmds), default=0)
    for l, c in cmds.items():
        add(f"{l + ':':{width + 1}s} {c}")
    add("```\n")
    add("Files: " + ", ".join(f"[`{f}`]({rel}/{f})" for f in meta.get("files", [])) + ".\n")
    with open(path, "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
