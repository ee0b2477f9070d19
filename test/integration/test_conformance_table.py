"""docs/conformance.md stays true (issue 20).

Every row of the conformance table names a test that exists (file::name:
a `def name(` in a Python file, a function `name(` or a `TH_TEST(name)` in
a C file), every `yes` row names at least one, and the table covers exactly
the MUST / SHOULD sentences that scripts/conformance_extract.py finds in the
spec texts (shared/specs). No services are started.
"""
import os
import re
import subprocess
import sys

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(TOP, "docs", "conformance.md")
sys.path.insert(0, os.path.join(TOP, "scripts"))
import conformance_extract  # noqa: E402

STATUSES = {"yes", "n/a", "deviation", "gap"}
REF = re.compile(r"(test/[\w/.-]+\.(?:py|c|sh))::(\w+)")


def rows():
    out = []
    with open(DOC, encoding="utf-8") as f:
        for ln in f:
            if not ln.startswith("| rfc"):
                continue
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]]
            assert len(cells) == 6, ln
            out.append({"id": cells[0], "section": cells[1], "level": cells[2],
                        "status": cells[4], "evidence": cells[5]})
    return out


def defined(path, name):
    full = os.path.join(TOP, path)
    if not os.path.isfile(full):
        return False
    with open(full, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".py"):
        return re.search(r"^def %s\(" % re.escape(name), text, re.M) is not None
    if path.endswith(".c"):
        # a function `name(`, or a unit test `TH_TEST(name)` (test/unit/harness.h)
        n = re.escape(name)
        return re.search(r"^(?:%s\(|TH_TEST(?:_IN\(\d+, |\()%s\))" % (n, n), text, re.M) is not None
    return name in text


def test_every_named_test_exists():
    missing, count = [], 0
    for r in rows():
        assert r["status"] in STATUSES, r
        refs = REF.findall(r["evidence"])
        if r["status"] == "yes":
            assert refs, "%s is marked yes without a test" % r["id"]
        if r["status"] in ("n/a", "deviation", "gap") and not refs:
            assert len(r["evidence"]) > 10, "%s needs a reason" % r["id"]
        for path, name in refs:
            count += 1
            if not defined(path, name):
                missing.append("%s: %s::%s" % (r["id"], path, name))
    assert not missing, "rows name tests that do not exist:\n" + "\n".join(missing)
    assert count > 100


def test_named_tests_check_the_checker():
    """The existence check itself: a made-up name is not found, a real one is."""
    assert defined("test/integration/test_conformance_table.py", "test_every_named_test_exists")
    assert not defined("test/integration/test_conformance_table.py", "test_no_such_thing")
    assert defined("test/unit/test_wfe.c", "test_route_find")
    assert defined("test/unit/test_sa.c", "test_tx_rollback")  # TH_TEST_IN
    assert not defined("test/unit/test_wfe.c", "test_route_lost")


def test_table_covers_every_requirement_of_the_specs():
    specs = conformance_extract.default_specs_dir()
    if specs is None:
        pytest.skip("no spec texts (shared/specs) beside this tree")
    want = {r["id"]: r for r in conformance_extract.extract(specs)}
    have = {r["id"]: r for r in rows()}
    assert len(have) == len(rows()), "duplicate ids in docs/conformance.md"
    assert not set(want) - set(have), "sentences without a row:\n" + "\n".join(
        "%s %s" % (i, want[i]["text"]) for i in sorted(set(want) - set(have)))
    assert not set(have) - set(want), "rows whose sentence is gone: %s" % sorted(set(have) - set(want))
    for i, r in have.items():
        assert r["level"] == want[i]["level"], i
