#!/usr/bin/env python3
"""Plots of `make bench`: issuance rate and latency percentiles over time,
Anvil next to Pebble, one pair of panels per client count both ran.

    scripts/bench-plot.py bench/results.json bench/

Reads the per-second series anvil-loadgen reports ("timeline": issuances
completed in each second; "latency_timeline": [second, n, p50, p90, p99]
of the issuances that completed in it), writes DIR/bench-<clients>.dat
files and DIR/issuance-over-time.svg and .png with gnuplot (Debian's
gnuplot-nox). Prints their paths. Asserts nothing; exit 1 only if there is nothing to
plot or gnuplot fails.
"""
import json
import os
import shutil
import subprocess
import sys


def series(run):
    """{second: [issued, p50, p90, p99]} of one loadgen run."""
    out = {}
    for sec, n in enumerate(run.get("timeline") or []):
        out[sec] = [n, None, None, None]
    for sec, n, p50, p90, p99 in run.get("latency_timeline") or []:
        out.setdefault(sec, [n, None, None, None])[1:] = [p50, p90, p99]
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    res = json.load(open(sys.argv[1]))
    outdir = sys.argv[2]
    runs = {side: (res.get(side) or {}).get("runs") or {} for side in ("anvil", "pebble")}
    clients = sorted({c for side in runs.values() for c, r in side.items() if r.get("timeline")}, key=int)
    if not clients:
        print("bench-plot: no per-second series in %s (anvil-loadgen too old?)" % sys.argv[1], file=sys.stderr)
        return 1
    if shutil.which("gnuplot") is None:
        print("bench-plot: gnuplot not installed (apt-get install gnuplot-nox)", file=sys.stderr)
        return 1
    os.makedirs(outdir, exist_ok=True)
    plots = []
    for c in clients:
        path = os.path.join(outdir, "bench-%s.dat" % c)
        with open(path, "w") as f:
            f.write("# second anvil_issued anvil_p50 anvil_p90 anvil_p99 "
                    "pebble_issued pebble_p50 pebble_p90 pebble_p99 (ms; ? = none that second)\n")
            a = series(runs["anvil"].get(c, {}))
            p = series(runs["pebble"].get(c, {}))
            for sec in sorted(set(a) | set(p)):
                row = [sec] + (a.get(sec) or [None] * 4) + (p.get(sec) or [None] * 4)
                f.write(" ".join("?" if v is None else str(v) for v in row) + "\n")
        plots.append((c, path))
    svg = os.path.join(outdir, "issuance-over-time.svg")
    png = os.path.join(outdir, "issuance-over-time.png")
    load = (res.get("machine") or {}).get("loadavg_at_start")
    title = "anvil-loadgen, %s CPUs, load %.1f at start" % (
        (res.get("machine") or {}).get("cpus"), load or 0)
    g = ["set multiplot layout %d,2 title '%s'" % (len(plots), title),
         "set datafile missing '?'", "set key below", "set grid",
         "set xlabel 'seconds into the run'"]
    for c, path in plots:
        g += ["set title 'issuances per second, %s clients'" % c, "set ylabel 'issuances/s'",
              "plot '%s' using 1:2 with lines lw 2 title 'Anvil', "
              "'' using 1:6 with lines lw 2 title 'Pebble'" % path,
              "set title 'issuance latency, %s clients'" % c, "set ylabel 'ms (log)'",
              "set logscale y",
              "plot '%s' using 1:3 with lines lw 2 lc 1 title 'Anvil p50', "
              "'' using 1:5 with lines dt 2 lc 1 title 'Anvil p99', "
              "'' using 1:7 with lines lw 2 lc 2 title 'Pebble p50', "
              "'' using 1:9 with lines dt 2 lc 2 title 'Pebble p99'" % path,
              "unset logscale y"]
    g += ["unset multiplot"]
    heads = [["set terminal svg size 1200,%d dynamic font 'sans,11'" % (330 * len(plots)),
              "set output '%s'" % svg],
             ["set terminal pngcairo size 1200,%d font 'sans,9'" % (330 * len(plots)),
              "set output '%s'" % png]]
    for head in heads:
        p = subprocess.run(["gnuplot"], input="\n".join(head + g) + "\n", capture_output=True, text=True)
        if p.returncode != 0:
            print("bench-plot: gnuplot failed:\n" + p.stderr, file=sys.stderr)
            return 1
    print("plot: %s and %s (data: %s)" % (svg, png, ", ".join(path for _, path in plots)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
