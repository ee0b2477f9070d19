#!/usr/bin/env bash
# The CA suite of test_ca.sh with every issuer key in a SoftHSM2 token
# (anvil-admin ca init --pkcs11), plus the token's failure cases: missing at
# start, wrong PIN, unplugged while running and back. Ports:
# ANVIL_CA_P11_TEST_PORT_BASE (default 21240, inside the CA range
# 21200-21299; the ports it binds are base+12 and base+15).
export ANVIL_CA_TEST_PKCS11=1
export ANVIL_CA_TEST_PORT_BASE=${ANVIL_CA_P11_TEST_PORT_BASE:-21240}
exec bash "$(dirname "$0")/test_ca.sh" "$@"
