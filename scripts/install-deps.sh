#!/usr/bin/env bash
# Installs exactly the Debian 12 packages Anvil needs to build, run and test.
# Idempotent: does nothing when everything is present.
#   scripts/install-deps.sh            install what is missing (root) or say how
#   scripts/install-deps.sh --ensure   same, quiet when nothing is missing
#   scripts/install-deps.sh --list     print the package list
set -euo pipefail

PACKAGES=(
	# build
	build-essential pkg-config libssl-dev libmicrohttpd-dev libjansson-dev
	libc-ares-dev libevent-dev libpq-dev
	libp11-kit-dev
	# run
	postgresql openssl ca-certificates curl pebble
	# test
	python3 python3-pytest python3-acme python3-josepy python3-cryptography
	python3-requests certbot lego clang prometheus wrk procps iproute2
	# package (make deb, test_package.sh) and bench plots
	debhelper
	dpkg-dev
	fakeroot
	lintian
	systemd
	groff-base
	gnuplot-nox
	# HSM tests: SoftHSM2 tokens, pkcs11-tool
	softhsm2
	opensc
	# high availability (make test-cluster): Patroni + etcd, HAProxy
	patroni
	etcd-server
	etcd-client
	haproxy
	# email identifiers (RFC 8823): a real MTA, DKIM for the test client
	postfix
	python3-dkim
	# the VA hands challenge emails to the MTA with libcurl's SMTP client
	libcurl4-openssl-dev
	# device attestation: a software TPM 2.0, CBOR
	swtpm
	swtpm-tools
	tpm2-tools
	libcbor-dev
	python3-cbor2
)

missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
		case "$p" in \#*) continue ;; esac
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

case "${1:-}" in
--list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
esac

mapfile -t MISSING < <(missing_packages)
if [ "${#MISSING[@]}" -eq 0 ]; then
	[ "${1:-}" = "--ensure" ] || echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages: ${MISSING[*]}" >&2
	echo "install-deps: run as root:  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${MISSING[*]}" >&2
	exit 1
fi

echo "install-deps: installing ${MISSING[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || true
# Postfix asks how to configure itself; Anvil runs its own instances.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Package scripts must not start system daemons (etcd, Postfix, HAProxy) on
# their default ports: Anvil's scripts start private instances of each.
NO_START=/usr/sbin/policy-rc.d
if [ ! -e "$NO_START" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$NO_START"
	chmod 755 "$NO_START"
	trap 'rm -f "$NO_START"' EXIT
fi
apt-get install -y -q --no-install-recommends "${MISSING[@]}" >&2
# The Debian postgresql package may start a cluster on 5432; Anvil uses its
# own private clusters and never needs the system one.
echo "install-deps: done" >&2
