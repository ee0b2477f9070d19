"""Helpers for the tests that drive Anvil through certbot's `acme` library
(python3-acme / josepy): an account on the env's directory and a CSR.

The tests that speak raw JWS use rel_acme.py instead.
"""
import josepy as jose
from acme import client as acme_client, crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def account(env, key, user_agent, email=None, alg=jose.RS256):
    """Registers a new account with key (a josepy JWK) on env's directory,
    agreeing to the terms, with email as its contact when given. Returns
    (ClientV2, key, registration resource); the client signs with the
    account's kid from then on."""
    net = acme_client.ClientNetwork(key, alg=alg, user_agent=user_agent, verify_ssl=env.trust_path)
    directory = acme_client.ClientV2.get_directory(env.directory_url, net)
    c = acme_client.ClientV2(directory, net)
    regr = c.new_account(messages.NewRegistration.from_data(
        email=email, terms_of_service_agreed=True))
    net.account = regr
    return c, key, regr


def ec_account(env, user_agent, email=None):
    """account() with a fresh P-256 key, signing with ES256."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    return account(env, key, user_agent, email=email, alg=jose.ES256)


def csr_pem(names):
    """A PEM CSR for names (dNSName SANs) under a fresh P-256 key."""
    k = ec.generate_private_key(ec.SECP256R1())
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    return crypto_util.make_csr(pem, names)
