"""Gets a certificate for an IP address (RFC 8738) over http-01 with
python-acme. Usage:
  acme_ip_client.py --directory URL --trust PEM --ip 127.0.0.1 --http-port N --out chain.pem
"""
import argparse
import http.server
import ipaddress
import sys
import threading

import josepy
from acme import challenges, client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--directory", required=True)
    ap.add_argument("--trust", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    acct_key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(acct_key, alg=josepy.ES256, user_agent="anvil-test-ip",
                               verify_ssl=a.trust)
    directory = messages.Directory.from_json(net.get(a.directory).json())
    acme = client.ClientV2(directory, net=net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))

    cert_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ip = ipaddress.ip_address(a.ip)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip)]), critical=False)
           .sign(cert_key, hashes.SHA256()))
    csr_pem = csr.public_bytes(serialization.Encoding.PEM)
    order = acme.new_order(csr_pem)
    idents = [az.body.identifier for az in order.authorizations]
    assert all(i.typ == messages.IDENTIFIER_IP for i in idents), idents

    responses = {}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            tok = self.path.rsplit("/", 1)[-1]
            body = responses.get(tok)
            self.send_response(200 if body else 404)
            self.end_headers()
            if body:
                self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer((a.ip, a.http_port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for az in order.authorizations:
            ch = next(c for c in az.body.challenges if isinstance(c.chall, challenges.HTTP01))
            resp, validation = ch.response_and_validation(acct_key)
            responses[ch.chall.encode("token")] = validation
            acme.answer_challenge(ch, resp)
        order = acme.poll_and_finalize(order)
    finally:
        srv.shutdown()
    with open(a.out, "w") as f:
        f.write(order.fullchain_pem)
    print("issued for", a.ip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
