#!/usr/bin/env bash
# Regenerates the key fixtures used by test/unit/test_jose.c (test keys only,
# never used for anything else). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out rsa4096.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -pkeyopt rsa_keygen_pubexp:3 -out rsa2048-e3.pem
chmod 644 ./*.pem
