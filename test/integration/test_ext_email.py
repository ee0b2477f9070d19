"""RFC 8823 (ACME for end-user S/MIME certificates), end to end with a real
MTA: a private Postfix instance (scripts/mta.sh, started by the launcher)
carries the CA's challenge email to the applicant's maildir and the
applicant's DKIM-signed reply to the maildir the VA watches.

The client here is the suite's own: it orders an `email` identifier, reads
the challenge email from the maildir Postfix delivered it to, checks the
CA's DKIM signature, replies DKIM-signed (python3-dkim; the key records are
published in pebble-challtestsrv, the VA's DNS server), gets an S/MIME
certificate and signs and verifies a message with `openssl smime`.

Ports: AnvilEnv base 29600 (the MTA listens on base + 25).
"""
import email.utils
import glob
import os
import smtplib
import subprocess
import sys
import tempfile
import time

import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from rel_acme import b64  # noqa: E402

PORT_BASE = 29600
CA_FROM = "acme-challenge@anvil.test"
# RFC 8823 §3.2: fields the reply's DKIM h= tag must include
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"in-reply-to",
          b"references", b"content-type", b"content-transfer-encoding"]


def rsa_pem(bits=1024):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    spki = k.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + __import__("base64").b64encode(spki).decode()


# 1024-bit test keys: the key record fits one TXT character-string
ALICE_DKIM_PEM, ALICE_DKIM_TXT = rsa_pem()   # mail.test, selector s1
OTHER_DKIM_PEM, OTHER_DKIM_TXT = rsa_pem()   # other.test, selector s1


def wait_mta(timeout=60):
    """The launcher starts Postfix beside the services: wait for SMTP."""
    end = time.time() + timeout
    while True:
        try:
            smtplib.SMTP("127.0.0.1", PORT_BASE + 25, timeout=5).quit()
            return
        except OSError:
            assert time.time() < end, "the private Postfix never listened"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def env():
    """configs/dev's VA signs challenge emails with the DKIM key
    scripts/bootstrap.sh made (var/pki/dkim.key, selector anvil)."""
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="email",
                            services=anvil_env.ALL_SERVICES + ["mta"], config={
                                "va.json:email.reply_timeout": "12s",
                                "ra.json:policy.email.domains": ["mail.test", "other.test"]}) as e:
        wait_mta()
        for host, txt in (("s1._domainkey.mail.test.", ALICE_DKIM_TXT),
                          ("s1._domainkey.other.test.", OTHER_DKIM_TXT)):
            e.challtest("set-txt", {"host": host, "value": txt})
        yield e
        a.assert_no_sanitizer_reports(e)


raw = a.raw_fixture()
acct = a.account_fixture()


def dns_txt(records):
    def f(name, timeout=5):
        return records.get(name.decode().rstrip(".") + ".")
    return f


def ca_dns(env):
    """The CA's DKIM key record, as bootstrap.sh wrote it (var/pki/dkim.txt)
    for anvil._domainkey.anvil.test."""
    with open(os.path.join(env.var_dir, "pki", "dkim.txt")) as f:
        return dns_txt({"anvil._domainkey.anvil.test.": f.read().strip().encode()})


def order_email(raw, acct, addr, profile="smime", status=201):
    key, kid = acct
    r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "email", "value": addr}],
                                       "profile": profile}, key, kid=kid)
    assert r.status_code == status, r.text
    return r


def challenge_of(raw, acct, order):
    key, kid = acct
    az_url = order["authorizations"][0]
    az = raw.post(az_url, None, key, kid=kid).json()
    ch = [c for c in az["challenges"] if c["type"] == "email-reply-00"]
    assert len(ch) == 1, az
    return az_url, az, ch[0]


def read_challenge_mail(env, to, since, timeout=30):
    """The newest challenge email Postfix delivered to `to` after `since`
    (the mail.test maildir)."""
    d = os.path.join(env.var_dir, "mta", "mail", to.split("@")[1], "new")
    end = time.time() + timeout
    while time.time() < end:
        for path in sorted(glob.glob(os.path.join(d, "*")), key=os.path.getmtime, reverse=True):
            with open(path, "rb") as f:
                raw_msg = f.read()
            msg = email.message_from_bytes(raw_msg)
            if msg["To"] == to and os.path.getmtime(path) >= since - 1 and msg["Subject"].startswith("ACME:"):
                os.rename(path, path.replace("/new/", "/cur/"))
                return raw_msg, msg
        time.sleep(0.2)
    raise AssertionError("no challenge email for %s in %s" % (to, d))


def digest(token1, token2, thumb):
    import hashlib
    # RFC 8823 §3.2: SHA-256 of the key authorization of the whole token
    # (token-part1 || token-part2), RFC 8555 §8.1
    return b64(hashlib.sha256(("%s%s.%s" % (token1, token2, thumb)).encode()).digest())


def reply(challenge_msg, sender, response, key_pem=ALICE_DKIM_PEM, domain=b"mail.test", sign=True):
    subject = "Re: " + challenge_msg["Subject"]
    body = "-----BEGIN ACME RESPONSE-----\r\n%s\r\n-----END ACME RESPONSE-----\r\n" % response
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n"
           "In-Reply-To: %s\r\nReferences: %s\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%s"
           % (sender, challenge_msg["From"], subject, email.utils.formatdate(),
              email.utils.make_msgid(domain=sender.split("@")[1]), challenge_msg["Message-ID"],
              challenge_msg["Message-ID"], body)).encode()
    if sign:
        sig = dkim.sign(msg, b"s1", domain, key_pem, include_headers=SIGNED + [b"mime-version"],
                        canonicalize=(b"relaxed", b"relaxed"))
        msg = sig + msg
    return msg


def send(env, sender, msg):
    s = smtplib.SMTP("127.0.0.1", PORT_BASE + 25, timeout=20)
    try:
        s.sendmail(sender, [CA_FROM], msg)
    finally:
        s.quit()


def post_and_wait(raw, acct, ch_url, az_url, timeout=60):
    key, kid = acct
    r = raw.post(ch_url, {}, key, kid=kid)
    assert r.status_code == 200, r.text
    return a.poll(raw, key, kid, az_url, ("valid", "invalid"), timeout=timeout)


def start_email_challenge(env, raw, acct, addr):
    since = time.time()
    r = order_email(raw, acct, addr)
    order_url, order = r.headers["Location"], r.json()
    az_url, az, ch = challenge_of(raw, acct, order)
    raw_msg, msg = read_challenge_mail(env, addr, since)
    token1 = "".join(msg["Subject"].split("ACME:", 1)[1].split())
    return order_url, order, az_url, ch, raw_msg, msg, token1


def roots(env):
    """The dev CA's roots (bootstrap.sh's trust.pem holds every root)."""
    with open(env.trust_path) as f:
        return f.read()


# ----------------------------------------------------------------- tests

def test_email_identifier_to_smime_certificate(env, raw, acct):
    key, kid = acct
    addr = "alice@mail.test"
    order_url, order, az_url, ch, raw_msg, msg, token1 = start_email_challenge(env, raw, acct, addr)
    # RFC 8823 §3: the challenge carries token-part2 in "token" and "from",
    # the address the challenge email comes from
    assert ch["from"] == CA_FROM and len(ch["token"]) >= 22
    # §3.1 item 1: "The message Subject header field has the following
    # syntax: "ACME: <token-part1>"" (at least 128 bits)
    assert len(token1) >= 22 and token1 != ch["token"]
    # §3.1 item 2: "Auto-Submitted: auto-generated" with "type=acme"
    assert msg["Auto-Submitted"] == "auto-generated; type=acme"
    assert msg["From"] == CA_FROM and msg["To"] == addr
    # §3.1 item 3: the challenge "MUST be signed using either DKIM or
    # S/MIME": the CA's DKIM signature verifies with its published key
    assert dkim.verify(raw_msg, dnsfunc=ca_dns(env)), "challenge email DKIM does not verify"
    sent = reply(msg, addr, digest(token1, ch["token"], key.thumbprint()))
    send(env, addr, sent)
    az = post_and_wait(raw, acct, ch["url"], az_url)
    assert az["status"] == "valid", az
    rec = [c for c in az["challenges"] if c["type"] == "email-reply-00"][0]["validationRecord"][0]
    assert rec["from"] == addr and rec["dkimDomain"] == "mail.test"
    order = a.poll(raw, key, kid, order_url, ("ready",))

    # the S/MIME certificate: rfc822Name SAN, emailProtection EKU
    cert_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]), critical=False)
           .sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    r = raw.post(order["finalize"], {"csr": b64(csr)}, key, kid=kid)
    assert r.status_code == 200, r.text
    done = a.poll(raw, key, kid, order_url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    pem = raw.post(done["certificate"], None, key, kid=kid).text
    leaf = x509.load_pem_x509_certificate(pem.encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [addr] and not san.get_values_for_type(x509.DNSName)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment  # RSA: sign and encrypt

    # openssl smime can sign with it and verify against the CA's root
    with tempfile.TemporaryDirectory() as d:
        def w(name, data):
            p = os.path.join(d, name)
            with open(p, "w" if isinstance(data, str) else "wb") as f:
                f.write(data)
            return p
        chain = w("chain.pem", pem)
        keyp = w("key.pem", cert_key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        root = w("root.pem", roots(env))
        w("msg.txt", "Hello from an ACME S/MIME certificate.\n")
        subprocess.run(["openssl", "smime", "-sign", "-in", os.path.join(d, "msg.txt"),
                        "-signer", chain, "-inkey", keyp, "-certfile", chain,
                        "-out", os.path.join(d, "signed.eml")], check=True, capture_output=True)
        out = subprocess.run(["openssl", "smime", "-verify", "-in", os.path.join(d, "signed.eml"),
                              "-CAfile", root, "-purpose", "smimesign"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "Hello from an ACME S/MIME certificate." in out.stdout
        assert "Verification successful" in out.stderr


def test_wrong_digest_is_refused(env, raw, acct):
    key, _ = acct
    addr = "bob@mail.test"
    _, _, az_url, ch, _, msg, token1 = start_email_challenge(env, raw, acct, addr)
    # the digest of token-part2 alone (a client that ignored token-part1)
    send(env, addr, reply(msg, addr, digest("", ch["token"], key.thumbprint())))
    az = post_and_wait(raw, acct, ch["url"], az_url)
    assert az["status"] == "invalid"
    err = [c for c in az["challenges"] if c["type"] == "email-reply-00"][0]["error"]
    assert err["type"] == "urn:ietf:params:acme:error:incorrectResponse", err


def test_unsigned_reply_is_refused(env, raw, acct):
    key, _ = acct
    addr = "carol@mail.test"
    _, _, az_url, ch, _, msg, token1 = start_email_challenge(env, raw, acct, addr)
    # RFC 8823 §3.2: "In order to prove authenticity of a response
    # message, it MUST be DKIM [RFC6376] signed" (or S/MIME)
    send(env, addr, reply(msg, addr, digest(token1, ch["token"], key.thumbprint()), sign=False))
    az = post_and_wait(raw, acct, ch["url"], az_url)
    assert az["status"] == "invalid"
    err = [c for c in az["challenges"] if c["type"] == "email-reply-00"][0]["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized" and "DKIM" in err["detail"], err


def test_reply_from_another_address_is_refused(env, raw, acct):
    key, _ = acct
    addr = "dave@mail.test"
    _, _, az_url, ch, _, msg, token1 = start_email_challenge(env, raw, acct, addr)
    # someone who saw the challenge email answers from their own, properly
    # DKIM-signed address: the reply must come from the address validated
    other = "mallory@other.test"
    send(env, other, reply(msg, other, digest(token1, ch["token"], key.thumbprint()),
                           key_pem=OTHER_DKIM_PEM, domain=b"other.test"))
    az = post_and_wait(raw, acct, ch["url"], az_url)
    assert az["status"] == "invalid"
    err = [c for c in az["challenges"] if c["type"] == "email-reply-00"][0]["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized" and other in err["detail"], err


def test_replay_of_an_old_reply_is_refused(env, raw, acct):
    key, kid = acct
    addr = "frank@mail.test"
    _, _, az_url, ch, _, msg, token1 = start_email_challenge(env, raw, acct, addr)
    old = reply(msg, addr, digest(token1, ch["token"], key.thumbprint()))
    send(env, addr, old)
    assert post_and_wait(raw, acct, ch["url"], az_url)["status"] == "valid"
    # a fresh authorization for the same address (the valid one deactivated)
    r = order_email(raw, acct, addr)
    az_url = r.json()["authorizations"][0]
    r = raw.post(az_url, {"status": "deactivated"}, key, kid=kid)
    assert r.status_code == 200, r.text
    _, _, az_url, ch, _, msg, token1 = start_email_challenge(env, raw, acct, addr)
    # the old, genuinely signed reply is delivered again: it answers the
    # old token-part1, so nothing answers this challenge
    send(env, addr, old)
    t0 = time.time()
    az = post_and_wait(raw, acct, ch["url"], az_url)
    assert az["status"] == "invalid"
    err = [c for c in az["challenges"] if c["type"] == "email-reply-00"][0]["error"]
    assert err["type"] == "urn:ietf:params:acme:error:unauthorized" and "No reply" in err["detail"], err
    assert time.time() - t0 >= 10  # it waited for email.reply_timeout


def test_email_policy_and_profiles(env, raw, acct):
    key, kid = acct
    # policy.email.domains: only the listed mail domains
    r = order_email(raw, acct, "eve@elsewhere.test", status=400)
    assert "rejectedIdentifier" in r.text
    # a TLS profile refuses email identifiers ...
    r = order_email(raw, acct, "eve@mail.test", profile="classic", status=400)
    assert "rejectedIdentifier" in r.text
    # ... and the S/MIME profile refuses DNS names
    r = raw.post(raw.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "a.test"}],
                                       "profile": "smime"}, key, kid=kid)
    assert r.status_code == 400 and "rejectedIdentifier" in r.text, r.text
    # an address not in normal form is malformed
    r = order_email(raw, acct, "eve@MAIL.test", status=400)
    assert "malformed" in r.text or "rejectedIdentifier" in r.text
