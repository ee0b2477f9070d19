#!/usr/bin/env python3
"""Extracts every MUST, MUST NOT, SHOULD and SHOULD NOT sentence of the
specifications docs/conformance.md covers, from the offline texts in
shared/specs (RFC 8555 sections 6-8, RFC 8737, RFC 8738 and RFC 9773 up to
their IANA/Security sections), each with a stable id:

    <spec>-<section>-<8 hex of SHA-256 of the normalised sentence>

    scripts/conformance_extract.py [--specs DIR] [--json]

Prints one requirement a line (id, level, sentence), or JSON. The table
test (test/integration/test_conformance_table.py) runs the same code and
fails when a requirement has no row or a row names a requirement that no
longer exists, so the table stays complete.
"""
import argparse
import hashlib
import json
import os
import re
import sys

# (spec tag, file, top-level sections kept: None = every section of the
# middle part except the ones listed in SKIP)
SPECS = [
    ("rfc8555", "rfc8555-acme.md", {6, 7, 8}),
    ("rfc8737", "rfc8737-tls-alpn.md", None),
    ("rfc8738", "rfc8738-ip.md", None),
    ("rfc9773", "rfc9773-ari.md", None),
]
SKIP = re.compile(r"^(IANA|Security|Acknowledg|Privacy|Implementation Status|"
                  r"Introduction|Conventions|Terminology|Notational|Design Rationale)",
                  re.I)
KEYWORD = re.compile(r"\b(MUST|SHOULD)\b")
ABBREV = ("e.g.", "i.e.", "etc.", "cf.", "Sec.", "vs.")


def default_specs_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.environ.get("ANVIL_SPECS"),
                 os.path.join(here, "..", "..", "..", "shared", "specs"),
                 os.path.join(here, "..", "..", "shared", "specs"),
                 "/work/shared/specs"):
        if cand and os.path.isdir(cand):
            return os.path.abspath(cand)
    return None


def clean(text):
    text = re.sub(r"\{\{[!?]?([^}]*)\}\}", r"\1", text)   # {{RFC8555}}
    text = re.sub(r"\[@?([^\]]*)\]", r"\1", text)          # [@RFC8555]
    text = text.replace("&quot;", '"').replace("&amp;", "&")
    text = re.sub(r"`", "", text)
    text = re.sub(r"(?<![\"'])\*+(?=\w)|(?<=\w)\*+", "", text)  # *emphasis*
    text = re.sub(r"\\([-*_.\\])", r"\1", text)                # markdown escapes
    return re.sub(r"\s+", " ", text).strip()


def sentences(par):
    out, start, i = [], 0, 0
    while i < len(par):
        if par[i] == "." and (i + 1 == len(par) or par[i + 1] == " "):
            word = par[:i + 1].rsplit(" ", 1)[-1]
            if not word.endswith(ABBREV) and not re.match(r"^\d+(\.\d+)*\.$", word):
                out.append(par[start:i + 1].strip())
                start = i + 1
        i += 1
    if par[start:].strip():
        out.append(par[start:].strip())
    return out


def paragraphs(lines):
    """Paragraphs of one section's lines; code blocks and tables dropped."""
    buf, code = [], False
    for ln in lines:
        if ln.startswith("~~~") or ln.startswith("```"):
            code = not code
            if buf:
                yield " ".join(buf)
                buf = []
            continue
        if code or ln.startswith("    ") and not buf:
            continue
        if not ln.strip() or ln.lstrip().startswith(("* ", "- ", "| ")) or re.match(r"^\s*\d+\. ", ln):
            if buf:
                yield " ".join(buf)
                buf = []
            if not ln.strip() or ln.lstrip().startswith("| "):
                continue
        buf.append(ln.strip())
    if buf:
        yield " ".join(buf)


def sections(path):
    """(number "7.4.2", title, lines) of the middle part of a markdown spec."""
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    # kramdown-rfc: "--- middle" ... "--- back"; mmark: "{mainmatter}" ... "{backmatter}"
    start, end = 0, len(text)
    for i, ln in enumerate(text):
        if ln.strip() in ("--- middle", "{mainmatter}"):
            start = i + 1
        elif ln.strip() in ("--- back", "{backmatter}"):
            end = i
            break
    counters, cur, out = [0] * 6, None, []
    for ln in text[start:end]:
        m = re.match(r"^(#{1,6})\s+(.*?)\s*(\{#[^}]*\})?\s*$", ln)
        if m:
            level = len(m.group(1))
            counters[level - 1] += 1
            for k in range(level, 6):
                counters[k] = 0
            num = ".".join(str(c) for c in counters[:level])
            cur = [num, clean(m.group(2)), []]
            out.append(cur)
        elif cur is not None:
            cur[2].append(ln)
    return out


def extract(specs_dir):
    reqs, seen = [], set()
    for tag, fname, keep in SPECS:
        top_title = {}
        for num, title, lines in sections(os.path.join(specs_dir, fname)):
            top = int(num.split(".")[0])
            if "." not in num:
                top_title[top] = title
            if keep is not None and top not in keep:
                continue
            if keep is None and SKIP.match(top_title.get(top, "")):
                continue
            for par in paragraphs(lines):
                par = re.sub(r"^[*-] ", "", clean(par))   # list marker
                for s in sentences(par):
                    kw = KEYWORD.findall(s)
                    if not kw:
                        continue
                    levels = sorted(set(("MUST NOT" if re.search(r"\bMUST NOT\b", s) else "MUST")
                                        if k == "MUST" else
                                        ("SHOULD NOT" if re.search(r"\bSHOULD NOT\b", s) else "SHOULD")
                                        for k in kw))
                    norm = re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()
                    rid = "%s-%s-%s" % (tag, num, hashlib.sha256(norm.encode()).hexdigest()[:8])
                    if rid in seen:
                        continue
                    seen.add(rid)
                    reqs.append({"id": rid, "spec": tag, "section": num, "title": title,
                                 "level": "/".join(levels), "text": s})
    return reqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--specs", default=default_specs_dir())
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not a.specs:
        sys.exit("conformance_extract: no specs directory (set ANVIL_SPECS)")
    reqs = extract(a.specs)
    if a.json:
        json.dump(reqs, sys.stdout, indent=1)
        print()
    else:
        for r in reqs:
            print("%s\t%s\t%s" % (r["id"], r["level"], r["text"]))


if __name__ == "__main__":
    main()
