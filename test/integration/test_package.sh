#!/usr/bin/env bash
# The Debian package (issue #28): `make deb` builds it from this tree's
# build, lintian reports no error, unpacking it into a fresh root puts every
# file where the units, the default configs and the launcher expect it,
# systemd-sysusers/-tmpfiles create the user and directories in that root,
# `systemd-analyze verify` accepts the units, and `make install` into a
# DESTDIR gives the same layout under another prefix.
# Skipped under `make asan` (the package is built from the regular build).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
BINDIR=${BINDIR:-bin}
P=0; F=0; S=0
ok() { P=$((P + 1)); echo "ok     - $1"; }
bad() { F=$((F + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && echo "$2" | tail -n 20 | sed 's/^/#   /'; }
skip() { S=$((S + 1)); echo "skip   - $1"; }
finish() { echo "$P passed, $F failed, $S skipped"; [ "$F" -eq 0 ]; exit $?; }

if [ "$BUILD" != build ] || [ "$BINDIR" != bin ]; then
	echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
for t in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$t" >/dev/null || { bad "$t installed (scripts/install-deps.sh)"; finish; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/anvil-pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- build ---------------------------------------------------------------
start=$SECONDS
if out=$(make --no-print-directory deb 2>&1); then
	ok "make deb ($((SECONDS - start))s)"
else
	bad "make deb" "$out"; finish
fi
v=$(dpkg-parsechangelog -S Version); a=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$BUILD/deb/anvil_${v}_$a.deb
[ -s "$deb" ] && ok "package at $deb" || { bad "package at $deb"; finish; }

# ---- lintian: no errors (warnings are printed, not fatal) ----------------
if out=$(lintian --fail-on error "$deb" 2>&1); then
	ok "lintian: no errors"
	echo "$out" | grep -E '^[WE]:' | sed 's/^/#   /'
else
	bad "lintian: no errors" "$out"
fi

# ---- the files where the units expect them -------------------------------
R=$tmp/root
mkdir -p "$R"
dpkg -x "$deb" "$R"
units=$R/lib/systemd/system
for svc in sa ca va ra wfe; do
	u=$units/anvil-$svc.service
	[ -f "$u" ] || { bad "anvil-$svc.service installed"; continue; }
	exec_line=$(sed -n 's/^ExecStart=//p' "$u")
	bin=${exec_line%% *}
	cfg=$(echo "$exec_line" | sed -n 's/.*--config \([^ ]*\).*/\1/p')
	if [ -x "$R$bin" ] && [ -f "$R$cfg" ]; then
		ok "anvil-$svc.service: $bin and $cfg in the package"
	else
		bad "anvil-$svc.service: $bin and $cfg in the package"
	fi
	for p in $(sed -n 's/^ReadOnlyPaths=//p' "$u"); do
		[ -d "$R$p" ] && ok "anvil-$svc.service: ReadOnlyPaths $p exists" \
			|| bad "anvil-$svc.service: ReadOnlyPaths $p exists"
	done
done
[ -f "$units/anvil.target" ] && ok "anvil.target installed" || bad "anvil.target installed"

# Every path the default configs and the launcher config name is packaged
# (or is one the operator creates: keys, TLS, sockets, logs).
missing=$(python3 - "$R" <<'EOF'
import json, os, sys
root = sys.argv[1]
etc = os.path.join(root, "etc/anvil")
bad = []
for name in sorted(os.listdir(etc)):
    if not name.endswith(".json"):
        continue
    doc = json.load(open(os.path.join(etc, name)))
    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and v.startswith("/"):
            if v.startswith(("/run/", "/var/log/", "/etc/anvil/pki/", "/etc/anvil/tls/")):
                return
            if not os.path.exists(root + v):
                bad.append("%s: %s" % (name, v))
    walk(doc)
print("\n".join(bad))
EOF
)
[ -z "$missing" ] && ok "every path in /etc/anvil/*.json is packaged" \
	|| bad "every path in /etc/anvil/*.json is packaged" "$missing"

conff=$(dpkg-deb -f "$deb" Package >/dev/null; dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
nconf=0
for f in "$R"/etc/anvil/*; do
	[ -f "$f" ] || continue
	p=${f#"$R"}
	echo "$conff" | grep -qx "$p" || { bad "$p is a conffile"; nconf=1; }
done
[ "$nconf" = 0 ] && ok "every file in /etc/anvil is a conffile"
[ "$(stat -c %a "$R/etc/anvil/sa.dsn")" = 600 ] && ok "sa.dsn packaged mode 0600" \
	|| bad "sa.dsn packaged mode 0600"
nman=0
for b in "$R"/usr/bin/anvil*; do
	n=$(basename "$b")
	[ -f "$R/usr/share/man/man8/$n.8.gz" ] || { bad "man page for $n"; nman=1; }
done
[ "$nman" = 0 ] && ok "a man page for every binary"
[ -f "$R/usr/share/bash-completion/completions/anvil-admin" ] && ok "bash completion installed" \
	|| bad "bash completion installed"
ls "$R"/usr/share/anvil/schema/*.sql >/dev/null 2>&1 && ok "schema installed" || bad "schema installed"
if zcat "$R/usr/share/man/man8/anvil-admin.8.gz" | groff -mandoc -Tutf8 -ww 2>&1 >/dev/null | grep -q .; then
	bad "anvil-admin.8 renders without groff warnings"
else
	ok "anvil-admin.8 renders without groff warnings"
fi

# postinst's two steps in the fresh root: the user and the directories.
mkdir -p "$R/etc"
touch "$R/etc/passwd" "$R/etc/group" "$R/etc/shadow" "$R/etc/gshadow"
# One user per service (each unit's User=), all in group anvil.
users_ok() {
	grep -q '^anvil:' "$R/etc/group" || return 1
	gid=$(awk -F: '$1 == "anvil" {print $3}' "$R/etc/group")
	for svc in sa ra ca va wfe admin; do
		awk -F: -v u="anvil-$svc" -v g="$gid" '$1 == u && $4 == g {f = 1} END {exit !f}' \
			"$R/etc/passwd" || return 1
	done
	for u in "$units"/anvil-*.service; do
		grep -q "^User=$(basename "$u" .service)$" "$u" || return 1
	done
}
if systemd-sysusers --root="$R" >/dev/null 2>&1 && users_ok; then
	ok "systemd-sysusers creates group anvil and one user per service (each unit's User=)"
else
	bad "systemd-sysusers creates group anvil and one user per service (each unit's User=)"
fi
if systemd-tmpfiles --root="$R" --create >/dev/null 2>&1 \
	&& [ -d "$R/var/log/anvil" ] && [ -d "$R/run/anvil" ] \
	&& [ "$(stat -c %a "$R/etc/anvil")" = 750 ]; then
	ok "systemd-tmpfiles creates /run/anvil, /var/log/anvil; /etc/anvil 0750"
else
	bad "systemd-tmpfiles creates /run/anvil, /var/log/anvil; /etc/anvil 0750"
fi

# The packaged caller lists (rpc.callers: the identity of each caller class of
# the registry) name the users the packaged units run as, and
# check-config (run from the unpacked tree, so it finds those units) agrees.
out=$(python3 - "$R" <<'EOF'
import json, re, sys
root = sys.argv[1]
user = {}
for s in ["sa", "ca", "va", "ra", "wfe"]:
    m = re.search(r"^User=(.*)$", open("%s/lib/systemd/system/anvil-%s.service" % (root, s)).read(), re.M)
    user[s] = m.group(1)
calls = [("ca", "sa"), ("ra", "sa"), ("ra", "va"), ("ra", "ca"), ("wfe", "ra"), ("wfe", "sa")]
for frm, to in calls:
    callers = json.load(open("%s/etc/anvil/%s.json" % (root, to)))["rpc"]["callers"]
    if user[frm] not in callers.get(frm, []):
        print("%s.json does not name %s as caller class %s" % (to, user[frm], frm))
for s in ["sa", "ca", "va", "ra"]:
    for cls, ids in json.load(open("%s/etc/anvil/%s.json" % (root, s)))["rpc"]["callers"].items():
        if "*" in ids:
            print("%s.json lets anyone call as %s" % (s, cls))
# Least privilege: one user per service, so no caller shares another's class.
if len(set(user.values())) != len(user):
    print("units share a user: %s" % user)
EOF
)
[ -z "$out" ] && ok "default allowlists name the units' users, no wildcard caller" \
	|| bad "default allowlists name the units' users, no wildcard caller" "$out"
out=$("$R/usr/bin/anvil-admin" check-config --dir "$R/etc/anvil" 2>&1)
echo "$out" | grep -qE '^ok +callers +the caller lists name the users of the units' \
	&& ok "check-config finds the packaged units and their users allowed" \
	|| bad "check-config finds the packaged units and their users allowed" "$out"
echo "$out" | grep -qE '^FAIL +urls .*placeholder' \
	&& ok "check-config refuses the placeholder host" \
	|| bad "check-config refuses the placeholder host" "$out"

# ---- systemd-analyze verify, with the packaged binaries at their paths ---
# (a private mount namespace overlays the package's /usr/bin on the host's)
if command -v systemd-analyze >/dev/null && unshare -m true 2>/dev/null; then
	out=$(unshare -m sh -c "mount -t overlay overlay -o lowerdir=$R/usr/bin:/usr/bin /usr/bin && \
		systemd-analyze verify $units/anvil-*.service $units/anvil.target" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && ! echo "$out" | grep -q .; then
		ok "systemd-analyze verify: the units are clean"
	else
		bad "systemd-analyze verify: the units are clean" "$out"
	fi
else
	skip "systemd-analyze verify (no systemd-analyze or mount namespace)"
fi

# ---- make install into a DESTDIR under /usr/local -------------------------
D=$tmp/destdir
if out=$(make --no-print-directory install PREFIX=/usr/local DESTDIR="$D" 2>&1); then
	ok "make install PREFIX=/usr/local DESTDIR=…"
	u=$D/usr/local/lib/systemd/system/anvil-sa.service
	grep -q '^ExecStart=/usr/local/bin/anvil-sa ' "$u" && [ -x "$D/usr/local/bin/anvil-sa" ] \
		&& ok "/usr/local units start /usr/local/bin binaries" \
		|| bad "/usr/local units start /usr/local/bin binaries"
	grep -q '"/usr/local/share/anvil/schema"' "$D/etc/anvil/sa.json" \
		&& ok "default sa.json names the /usr/local schema" \
		|| bad "default sa.json names the /usr/local schema"
else
	bad "make install PREFIX=/usr/local DESTDIR=…" "$out"
fi

finish
