"""The RPC contract (rpc/methods.def) is the only place method names live.

- docs/rpc-methods.md's method tables are what `anvil-rpc doc` generates
  from the registry;
- no C source outside the registry spells a method name as a string
  literal (callers use the RPC_* ids of rpc/contract.h);
- `anvil-rpc methods` lists every method once, each with an owner, caller
  classes and a parameter spec.
"""
import json
import os
import re
import subprocess

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINDIR = os.path.abspath(os.environ.get("BINDIR", os.path.join(TOP, "bin")))


def registry():
    out = subprocess.run([os.path.join(BINDIR, "anvil-rpc"), "methods"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_doc_matches_registry():
    gen = subprocess.run([os.path.join(BINDIR, "anvil-rpc"), "doc"], check=True,
                         capture_output=True, text=True).stdout
    with open(os.path.join(TOP, "docs", "rpc-methods.md")) as f:
        doc = f.read()
    begin, end = "<!-- BEGIN anvil-rpc doc -->\n", "<!-- END anvil-rpc doc -->"
    assert begin in doc and end in doc
    committed = doc[doc.index(begin) + len(begin):doc.index(end)]
    assert committed == gen, ("docs/rpc-methods.md differs from `anvil-rpc doc`: "
                              "regenerate the block between the markers")


def test_registry_shape():
    reg = registry()
    names = [m["name"] for m in reg]
    assert len(names) == len(set(names))
    assert "health.check" in names
    for m in reg:
        assert m["owner"] in ("any", "sa", "ra", "ca", "va")
        assert m["callers"], m["name"]
        if m["owner"] != "any":
            assert m["name"].startswith(m["owner"] + "."), m["name"]
        # Boulder's model: the WFE holds only RA and read-only SA access;
        # it never reaches the CA or the VA.
        if "wfe" in m["callers"] and m["owner"] != "any":
            assert m["owner"] == "ra" or (m["owner"] == "sa" and m["access"] == "read"), m


def test_no_method_literals_outside_registry():
    names = {m["name"] for m in registry()}
    files = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=TOP, check=True,
                           capture_output=True, text=True).stdout.split()
    lit = re.compile(r'"((?:sa|ra|ca|va|health)\.[a-z_]+)"')
    bad = []
    for f in files:
        if f in ("rpc/methods.def",):
            continue
        with open(os.path.join(TOP, f), errors="replace") as fh:
            for no, line in enumerate(fh, 1):
                for m in lit.finditer(line):
                    if m.group(1) in names:
                        bad.append("%s:%d: %s" % (f, no, line.strip()))
    assert not bad, "method names as string literals (use the RPC_* ids):\n" + "\n".join(bad)
