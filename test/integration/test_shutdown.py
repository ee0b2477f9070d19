"""Graceful shutdown under load (issue 14).

One Anvil through the launcher, with the RA's test knob slow_finalize (3 s)
so that finalizations are still running when SIGTERM arrives. While
bin/anvil-loadgen keeps 8 clients issuing, a raw client finalizes several
ready orders (each answered 200 `processing`: accepted), then the launcher
gets SIGTERM. Then:
- the launcher stops every service and exits 0 within its stop timeout;
- every request the server accepted before the signal has its effect in
  the database: each accepted finalize ends `valid` with a good
  certificate (completed during the drain, or recovered by the RA at the
  next start), and each accepted order / challenge is stored;
- after a restart from the same configuration and database, the CA works
  and the store holds no order or challenge stuck in `processing`.

Ports: AnvilEnv base 26600.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import anvil_env  # noqa: E402
import rel_acme as a  # noqa: E402
from rel_acme import b64  # noqa: E402

PORT_BASE = 26600
N_FINALIZE = 6


@pytest.fixture(scope="module")
def env():
    with anvil_env.AnvilEnv(port_base=PORT_BASE, name="shutdown", config={
            "va.json:test.always_valid": True,
            "ra.json:test.slow_finalize": "3s",
            "ra.json:finalize.recover_after": "4s"}) as e:
        yield e
        reports = a.stop_and_sanitizer_reports(e)
        assert not reports, "sanitizer reports in the service logs:\n" + "\n".join(reports[:40])


def relaunch(env, timeout=90):
    """Starts the launcher again on the same config and var directory."""
    env.proc = subprocess.Popen([os.path.join(env.bin_dir, "anvil"), "run", "--config-dir", env.cfg_dir],
                                env=env.env, cwd=anvil_env.TOP, stdout=subprocess.PIPE,
                                stderr=env.launcher_log)
    fd, buf, end = env.proc.stdout.fileno(), b"", time.time() + timeout
    while time.time() < end:
        assert env.proc.poll() is None, "launcher exited on restart:\n" + env.logs_tail()
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            buf += os.read(fd, 65536)
            if b"ANVIL_DIRECTORY=" in buf:
                return
    raise AssertionError("no restart within %ds:\n%s" % (timeout, env.logs_tail()))


def test_sigterm_during_load_loses_nothing(env):
    raw = a.Wfe(env.directory_url, verify=env.trust_path)
    key, kid = a.new_account(raw)
    ready = [a.ready_order(raw, key, kid, ["s%d.shutdown.test" % i]) for i in range(N_FINALIZE)]
    extra_url, _ = a.new_order(raw, key, kid, ["accepted.shutdown.test"])

    lg = subprocess.Popen([os.path.join(env.bin_dir, "anvil-loadgen"), "--directory", env.directory_url,
                           "--trust", env.trust_path, "--clients", "8", "--duration", "8s",
                           "--http-port", str(env.ports["http01"]), "--suffix", "lg.shutdown.test",
                           "--timeout", "5s", "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          restore_signals=False)  # see test_crash_safety: loadgen and SIGPIPE
    time.sleep(2)
    accepted = []
    for url, order in ready:
        name = order["identifiers"][0]["value"]
        der = a.make_csr(ec.generate_private_key(ec.SECP256R1()), [name])
        r = raw.post(order["finalize"], {"csr": b64(der)}, key, kid=kid)
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("processing", "valid")
        accepted.append(url)

    t0 = time.time()
    env.proc.send_signal(signal.SIGTERM)
    rc = env.proc.wait(timeout=40)
    drain_s = time.time() - t0
    print("launcher drained in %.1f s (rc %d)" % (drain_s, rc))
    assert rc == 0, env.logs_tail()
    assert drain_s < 25, "stop took %.1f s" % drain_s
    for svc in ("sa", "ca", "va", "ra", "wfe"):
        assert env.pid_of(svc) is None, "%s still running after the launcher exited" % svc
    lg.communicate(timeout=60)

    # Before any restart: what was accepted is stored.
    states = {}
    for url in accepted:
        states[url] = a.psql(env, "SELECT status FROM orders WHERE id = %d" % a.id_of(url))[0][0]
    assert a.psql(env, "SELECT count(*) FROM orders WHERE id = %d" % a.id_of(extra_url))[0][0] == "1"
    print("accepted finalizes after the drain: %s" % sorted(states.values()))

    relaunch(env)
    raw = a.Wfe(env.directory_url, verify=env.trust_path)
    # Recovery (recover_after 4 s) finishes what the drain left: polled
    # with a generous deadline, since a busy machine slows every sweep.
    end = time.time() + 120
    while time.time() < end:
        rows = a.psql(env, "SELECT id, status FROM orders WHERE id IN (%s)" %
                      ",".join(str(a.id_of(u)) for u in accepted))
        if all(st != "processing" for _, st in rows):
            break
        time.sleep(0.5)
    final = {int(i): st for i, st in rows}
    print("accepted finalizes after restart: %s" % sorted(final.values()))
    assert all(st == "valid" for st in final.values()), final
    for url in accepted:
        o = a.sa_order(env, url)
        c = env.rpc("sa").call("sa.get_certificate", {"serial": o["certificate_serial"]})
        assert c["status"] == "good" and c["order_id"] == a.id_of(url)
    # Nothing the load left in flight stays stuck: the loadgen's orders
    # and challenges caught by the drain are recovered too (their sweeps
    # may come after the accepted ones', so polled).
    def stuck():
        return (a.psql(env, "SELECT id FROM orders WHERE status = 'processing' "
                            "AND began_processing < now() - interval '15 seconds'") +
                a.psql(env, "SELECT id FROM challenges WHERE status = 'processing' "
                            "AND attempted_at < now() - interval '15 seconds'"))
    left = anvil_env.wait_for(lambda: not stuck(), timeout=120)
    assert left, "still processing: %s" % stuck()
    # and the restarted CA issues
    got = a.issue(raw, key, kid, ["after.shutdown.test"])
    assert a.sa_cert(env, got["leaf"])["status"] == "good"
