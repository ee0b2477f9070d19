"""The launcher (bin/anvil): ordered start, restart after a crash, a second
instance refused, graceful stop of every child."""
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import anvil_env  # noqa: E402
from anvil_env import AnvilEnv, TOP  # noqa: E402


@pytest.fixture(scope="module")
def env():
    bindir = os.environ.get("BINDIR", os.path.join(TOP, "bin"))
    for b in ("anvil", "anvil-sa"):
        if not os.access(os.path.join(bindir, b), os.X_OK):
            pytest.skip("not built yet: " + b)
    base = int(os.environ.get("ANVIL_TEST_PORT_BASE", "24000")) + 300
    with AnvilEnv(port_base=base, services=["sa"], name="launcher") as e:
        yield e


wait_for = anvil_env.wait_for


def test_started_and_healthy(env):
    assert env.pid_of("sa") is not None
    assert env.debug_get("sa", "/healthz")[0] == 200
    assert env.rpc("sa").call("health.check") is not None


def test_restarts_a_killed_child(env):
    pid = env.pid_of("sa")
    os.kill(pid, signal.SIGKILL)
    new = wait_for(lambda: (env.pid_of("sa") or pid) != pid and env.pid_of("sa"), 120)
    assert new and new != pid, "sa was not restarted"
    assert wait_for(lambda: env.debug_get("sa", "/healthz")[0] == 200, 120)
    with open(os.path.join(env.var_dir, "log", "launcher.log")) as f:
        log = f.read()
    assert "killed by signal 9" in log and "restarting" in log, log


def test_second_instance_refused(env):
    p = subprocess.run([os.path.join(env.bin_dir, "anvil"), "run", "--config-dir", env.cfg_dir],
                       capture_output=True, text=True, timeout=30, env=env.env)
    assert p.returncode != 0
    assert "already running" in p.stderr, p.stderr


def test_bad_config_names_the_key(env, tmp_path):
    cfg = tmp_path / "anvil.json"
    cfg.write_text('{"services": [{"name": "x", "argv": ["/bin/true"], "helth": "1"}]}')
    p = subprocess.run([os.path.join(env.bin_dir, "anvil"), "run", "--config-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "services[0].helth: unknown key" in p.stderr, p.stderr


def test_sigterm_stops_everything(env):
    pid = env.pid_of("sa")
    env.proc.send_signal(signal.SIGTERM)
    assert env.proc.wait(timeout=60) == 0
    assert wait_for(lambda: env.pid_of("sa") is None, 10) is not None or env.pid_of("sa") is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
