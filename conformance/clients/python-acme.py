#!/usr/bin/python3
"""The `acme` Python library (certbot's, Debian's python3-acme) driven directly: register,
http-01 and dns-01 answered through the challenge test server, renew (a new order for the
same names by the same account), revoke, deactivate. Prints the runner's RESULT lines."""

import datetime
import json
import os
import sys
import urllib.request

import josepy as jose
from acme import challenges, client, crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import crypto

env = os.environ
DIRECTORY, CHALLTESTSRV, SUFFIX = env["ACME_DIRECTORY"], env["CHALLTESTSRV_URL"], env["SUFFIX"]
os.environ["REQUESTS_CA_BUNDLE"] = env["ACME_CA_FILE"]
TIMEOUT = datetime.timedelta(seconds=int(env.get("STEP_TIMEOUT", "120")))


def challtestsrv(path, body):
    req = urllib.request.Request(CHALLTESTSRV + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def issue(acme, kind, names):
    """One order for `names`, every authorization answered with `kind`; the PEM chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    order = acme.new_order(crypto_util.make_csr(key_pem, names))
    want = challenges.HTTP01 if kind == "http-01" else challenges.DNS01
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue
        chall = next(c for c in authz.body.challenges if isinstance(c.chall, want))
        response, validation = chall.response_and_validation(acme.net.key)
        domain = authz.body.identifier.value
        if kind == "http-01":
            challtestsrv("/add-http01", {"token": chall.chall.encode("token"), "content": validation})
        else:
            challtestsrv("/set-txt", {"host": chall.chall.validation_domain_name(domain) + ".",
                                      "value": validation})
        acme.answer_challenge(chall, response)
    done = acme.poll_and_finalize(order, datetime.datetime.now() + TIMEOUT)
    return done.fullchain_pem


def main():
    results = []

    def step(name, fn):
        try:
            detail = fn() or ""
            results.append((name, "pass", detail))
            print(f"RESULT {name} pass {detail}", flush=True)
            return True
        except Exception as e:  # the runner wants every failure as a result line
            print(f"RESULT {name} fail {type(e).__name__}: {str(e)[:150]}", flush=True)
            return False

    key = jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    net = client.ClientNetwork(key, user_agent="cobble-client-matrix")
    acme = client.ClientV2(client.ClientV2.get_directory(DIRECTORY, net), net)
    state = {}

    def register():
        reg = messages.NewRegistration.from_data(email="python@example.com",
                                                 terms_of_service_agreed=True)
        state["regr"] = acme.new_account(reg)
        return state["regr"].uri

    http_names = [f"py-http.{SUFFIX}", f"py-http2.{SUFFIX}"]

    def http01():
        state["cert"] = issue(acme, "http-01", http_names)

    def dns01():
        issue(acme, "dns-01", [f"py-dns.{SUFFIX}", f"*.py-dns.{SUFFIX}"])

    def renew():
        state["cert"] = issue(acme, "http-01", http_names)

    def revoke():
        # acme 2.x takes pyOpenSSL's X509 (the first certificate of the chain) wrapped.
        leaf = crypto.load_certificate(crypto.FILETYPE_PEM, state["cert"].encode())
        acme.revoke(jose.ComparableX509(leaf), 1)
        return f"serial={leaf.get_serial_number():x}"

    def deactivate():
        acme.deactivate_registration(state["regr"])

    ok = step("register", register)
    for name, fn in [("http-01", http01), ("dns-01", dns01), ("renew", renew),
                     ("revoke", revoke), ("deactivate", deactivate)]:
        if ok:
            step(name, fn)
        else:
            print(f"RESULT {name} fail no account", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
