#!/usr/bin/python3
"""Writes the seed corpus of test/fuzz/fuzz_jws.c into corpus/: ACME
request bodies made with python3-acme / python3-josepy (the producer certbot
uses). Test keys are generated on each run; the outputs are only fuzz seeds.
"""
import json
import os

import josepy as jose
from acme import jws, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
URL = "https://ca.example/acme/new-acct"
ACCT = "https://ca.example/acme/acct/1"
NONCE = b"fuzz-nonce"

rsa_key = jose.JWKRSA(key=rsa.generate_private_key(65537, 2048))
ec_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
p384 = jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1()))


def sign(key, alg, payload, kid=None, url=URL, nonce=NONCE):
    return jws.JWS.sign(payload, key=key, alg=alg, nonce=nonce, url=url,
                        kid=kid).json_dumps()


inner = sign(p384, jose.ES384, json.dumps(
    {"account": ACCT, "oldKey": ec_key.public_key().to_partial_json()})
    .encode(), nonce=None)
eab = messages.ExternalAccountBinding.from_data(
    ec_key.public_key(), "kid-1", jose.b64.b64encode(b"k" * 32).decode(),
    messages.Directory({"newAccount": URL}))
seeds = {
    "rs256-jwk": sign(rsa_key, jose.RS256, b'{"termsOfServiceAgreed":true}'),
    "es256-jwk": sign(ec_key, jose.ES256, b'{"contact":["mailto:a@b.c"]}'),
    "es256-kid": sign(ec_key, jose.ES256, b'{"identifiers":[{"type":"dns",'
                      b'"value":"a.example"}]}', kid=ACCT),
    "post-as-get": sign(ec_key, jose.ES256, b"", kid=ACCT),
    "key-change": sign(ec_key, jose.ES256, inner.encode(), kid=ACCT),
    "eab": sign(ec_key, jose.ES256, json.dumps(
        {"termsOfServiceAgreed": True, "externalAccountBinding": eab})
        .encode()),
}
# fuzz_jws.c also tries each input as a decoded protected header and as a
# bare JWK: seeds for those.
seeds["header-es256"] = jose.b64.b64decode(
    json.loads(seeds["es256-jwk"])["protected"]).decode()
seeds["header-rs256-kid"] = json.dumps({"alg": "RS256", "kid": ACCT,
                                        "nonce": "abc", "url": URL})
seeds["jwk-rsa"] = json.dumps(rsa_key.public_key().to_partial_json())
seeds["jwk-p384"] = json.dumps(p384.public_key().to_partial_json())
os.makedirs(OUT, exist_ok=True)
for name, body in seeds.items():
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(body)
