#!/usr/bin/env python3
"""Writes a copy of a config directory (default configs/dev) for another
instance: every port moved to PORT_BASE + offset, every "var/..." path moved
under VAR_DIR, "configs/dev/..." references into OUT_DIR and "bin/..." into
BINDIR. Used by the integration tests and `make bench` so they never clash
with a developer's `make run`.

    scripts/mkconfig.py --out DIR --var DIR --port-base 24000 [--src configs/dev]
                        [--bindir bin] [--set sa.json:db.pool=4 ...]
"""
import argparse
import json
import os
import re
import shutil
import sys

# dev port -> offset from the port base (docs/development.md).
PORTS = {
    4430: 30, 4431: 31, 4432: 32,
    8101: 11, 8102: 12, 8103: 13, 8104: 14, 8105: 15, 8106: 16,
    8053: 53, 8055: 55, 8025: 25,
    5001: 1, 5002: 2, 5003: 3,
    14000: 40, 15000: 50,
}


def move(v, a):
    if isinstance(v, dict):
        return {k: move(x, a) for k, x in v.items()}
    if isinstance(v, list):
        return [move(x, a) for x in v]
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return a.port_base + PORTS[v] if v in PORTS else v
    if isinstance(v, str):
        s = v
        for prefix in ("unix:", ""):
            if s.startswith(prefix + "var/"):
                s = prefix + os.path.join(a.var, s[len(prefix) + 4:])
            for src in a.src_names:
                if s.startswith(prefix + src + "/"):
                    s = prefix + os.path.join(a.out, s[len(prefix) + len(src) + 1:])
        if s.startswith("bin/"):
            s = os.path.join(a.bindir, s[4:])

        def port_sub(m):
            p = int(m.group(2))
            return m.group(1) + str(a.port_base + PORTS[p]) if p in PORTS else m.group(0)
        s = re.sub(r"(:)(\d{4,5})\b", port_sub, s)
        return s
    return v


def set_path(obj, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        obj = obj.setdefault(k, {})
    obj[keys[-1]] = value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="configs/dev")
    ap.add_argument("--out", required=True)
    ap.add_argument("--var", required=True)
    ap.add_argument("--bindir", default="bin")
    ap.add_argument("--port-base", type=int, required=True)
    ap.add_argument("--set", action="append", default=[],
                    help="FILE:key.path=JSON value override")
    a = ap.parse_args()
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    a.src_names = {a.src.rstrip("/"), os.path.abspath(a.src),
                   os.path.relpath(os.path.abspath(a.src), top)}
    a.out = os.path.abspath(a.out)
    a.var = os.path.abspath(a.var)
    a.bindir = os.path.abspath(a.bindir)
    os.makedirs(a.out, exist_ok=True)
    docs = {}
    for name in sorted(os.listdir(a.src)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(a.src, name)) as f:
            docs[name] = move(json.load(f), a)
    for s in a.set:
        fname, _, rest = s.partition(":")
        key, _, val = rest.partition("=")
        try:
            v = json.loads(val)
        except ValueError:
            v = val
        if fname not in docs:
            sys.exit("mkconfig: no such file %s" % fname)
        set_path(docs[fname], key, v)
    # public keys a config names by path (configs/dev/rats-verifier.pem)
    for name in sorted(os.listdir(a.src)):
        if name.endswith(".pem"):
            shutil.copyfile(os.path.join(a.src, name), os.path.join(a.out, name))
    for name, doc in docs.items():
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
