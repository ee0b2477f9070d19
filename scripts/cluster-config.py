#!/usr/bin/env python3
"""Writes the configuration of the test cluster (scripts/cluster.sh):

    scripts/cluster-config.py TOP DIR

DIR/app{1,2}/{sa,ca,va,ra,wfe}.json  one instance of every service per app
                                     machine, mutual-TLS RPC between machines,
                                     every client listing both instances
                                     ("targets": client-side failover)
DIR/db{1,2,3}/patroni.yml            PostgreSQL under Patroni, etcd as DCS,
                                     synchronous replication, small failover
                                     timers (a test cluster)
DIR/etcd/etcd.env                    the etcd member's flags
DIR/lb/haproxy.cfg                   HAProxy: the ACME port over both WFEs,
                                     and a port that follows the PostgreSQL
                                     leader (Patroni's REST /primary check)

Addresses are private to the namespaces cluster.sh creates (10.77.0.0/24):
lb .5, etcd .10, db1-3 .11-.13, app1-2 .21-.22, client .100. The service
configs start from configs/dev/*.json so they keep every other default.
"""
import json
import os
import sys

NET = "10.77.0."
ADDR = {"lb": NET + "5", "etcd": NET + "10", "db1": NET + "11", "db2": NET + "12",
        "db3": NET + "13", "app1": NET + "21", "app2": NET + "22", "client": NET + "100"}
APPS = ["app1", "app2"]
DBS = ["db1", "db2", "db3"]
RPC_PORT = {"sa": 9101, "ca": 9102, "va": 9103, "ra": 9104, "saro": 9105}
DEBUG_PORT = {"sa": 8101, "ca": 8102, "va": 8103, "ra": 8104, "wfe": 8105, "saro": 8106}
ACME_PORT = 4431
PG_PORT = 5432
PG_LEADER_PORT = 5000
PATRONI_PORT = 8008


def load(top, name):
    with open(os.path.join(top, "configs", "dev", name)) as f:
        return json.load(f)


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f, indent=2)
            f.write("\n")


def dsn(attrs="read-write"):
    """libpq multi-host: the SA connects to whichever node is the
    read-write primary (the read SA: a standby if there is one); TCP
    timeouts short enough that a dead or partitioned host is given up
    within seconds."""
    hosts = ",".join(ADDR[d] for d in DBS)
    return ("host=%s port=%d dbname=anvil user=postgres target_session_attrs=%s "
            "connect_timeout=2 keepalives=1 keepalives_idle=2 keepalives_interval=1 "
            "keepalives_count=2 tcp_user_timeout=4000" % (hosts, PG_PORT, attrs))


def client(pki, me, svc, timeout, conns):
    return {"targets": ["tcp:%s:%d" % (ADDR[a], RPC_PORT[svc]) for a in APPS],
            "connect_timeout": "1s", "timeout": timeout, "connections": conns,
            "tls": {"cert": "%s/rpc/%s.pem" % (pki, me), "key": "%s/rpc/%s.key" % (pki, me),
                    "ca": "%s/rpc/rpc-ca.pem" % pki, "server_name": svc}}


def server(pki, app, svc, workers):
    return {"listen": "tcp:%s:%d" % (ADDR[app], RPC_PORT[svc]), "workers": workers,
            "tls": {"cert": "%s/rpc/%s.pem" % (pki, svc), "key": "%s/rpc/%s.key" % (pki, svc),
                    "ca": "%s/rpc/rpc-ca.pem" % pki},
            "callers": {"wfe": ["wfe"], "ra": ["ra"], "ca": ["ca"], "admin": ["admin"]}}


def services(top, d):
    pki = os.path.join(d, "pki")
    lb = "https://%s:%d" % (ADDR["lb"], ACME_PORT)
    for i, app in enumerate(APPS):
        out = os.path.join(d, app)
        dbg = lambda s: {"addr": ADDR[app], "port": DEBUG_PORT[s]}  # noqa: E731

        sa = load(top, "sa.json")
        sa["debug"] = dbg("sa")
        sa["rpc"] = server(pki, app, "sa", 16)
        sa["db"].update({"dsn": dsn(), "pool": 8, "schema_dir": os.path.join(top, "schema"),
                         "auto_migrate": False})
        write(os.path.join(out, "sa.json"), sa)

        # The read SA: same binary, on a hot standby; the WFEs send it the
        # reads a replica may serve ("sa_read").
        saro = load(top, "sa.json")
        saro["debug"] = dbg("saro")
        saro["rpc"] = server(pki, app, "saro", 16)
        saro["rpc"]["tls"] = server(pki, app, "sa", 16)["tls"]
        saro["db"].update({"dsn": dsn("prefer-standby"), "pool": 8,
                           "schema_dir": os.path.join(top, "schema"), "auto_migrate": False})
        write(os.path.join(out, "saro.json"), saro)

        ca = load(top, "ca.json")
        ca["debug"] = dbg("ca")
        ca["rpc"] = server(pki, app, "ca", 8)
        ca["sa"] = client(pki, "ca", "sa", "10s", 4)
        ca["profiles"] = os.path.join(top, "configs", "dev", "profiles.json")
        ca["issuers"] = os.path.join(pki, "issuers.json")
        ca["public_base_url"] = "http://%s:4430" % ADDR["lb"]
        # Two CAs, one serial space each (random serials, distinct prefixes).
        ca["serial_prefix"] = 127 - i
        write(os.path.join(out, "ca.json"), ca)

        va = load(top, "va.json")
        va["debug"] = dbg("va")
        va["rpc"] = server(pki, app, "va", 64)
        va["dns"]["resolvers"] = ["%s:8053" % ADDR["client"]]
        va["dns"]["timeout"] = "2s"
        va["validation_timeout"] = "10s"
        va["rats"]["verifier_keys"] = os.path.join(top, "configs", "dev", "rats-verifier.pem")
        # the dev Token Authority root is made by scripts/bootstrap.sh, which
        # the cluster does not run: no tkauth-01 trust anchors here
        va.pop("tkauth", None)
        va["email"].pop("dkim", None)  # likewise its DKIM key
        write(os.path.join(out, "va.json"), va)

        ra = load(top, "ra.json")
        ra["debug"] = dbg("ra")
        ra["rpc"] = server(pki, app, "ra", 32)
        ra["sa"] = client(pki, "ra", "sa", "10s", 16)
        ra["va"] = client(pki, "ra", "va", "20s", 8)
        ra["ca"] = client(pki, "ra", "ca", "15s", 4)
        ra["profiles_file"] = os.path.join(top, "configs", "dev", "profiles.json")
        ra["account_uri_prefix"] = lb + "/acme/acct/"
        ra["terms_of_service"] = lb + "/terms"
        ra["policy"]["dns_persist"]["account_hash_prefix"] = lb + "/acme/account-hash/"
        # The other RA's recovery takes an order over once its claim has
        # not been shown alive (claim, serial reservation) for this long;
        # the first RA then cannot get anything signed or stored for it
        # (the finalize claim, docs/scaling.md). Longer than the CA
        # timeout: the CA signs nothing past 3/4 of it after the claim.
        ra["finalize"]["recover_after"] = "20s"
        write(os.path.join(out, "ra.json"), ra)

        wfe = load(top, "wfe.json")
        wfe["debug"] = dbg("wfe")
        wfe["listen"] = {"addr": ADDR[app], "port": ACME_PORT}
        wfe["tls"] = {"cert": os.path.join(pki, "wfe-tls.pem"), "key": os.path.join(pki, "wfe-tls.key")}
        wfe["base_url"] = lb
        wfe["hosts"] = ["%s:%d" % (ADDR["lb"], ACME_PORT)]
        wfe["threads"] = 16
        wfe["nonce"]["prefix"] = "c%d" % (i + 1)
        wfe["directory"]["terms_of_service"] = lb + "/terms"
        wfe["ra"] = client(pki, "wfe", "ra", "15s", 16)
        wfe["sa"] = client(pki, "wfe", "sa", "10s", 8)
        wfe["sa_read"] = client(pki, "wfe", "saro", "10s", 8)
        wfe["sa_read"]["tls"]["server_name"] = "sa"
        wfe["pki"] = {"addr": ADDR[app], "port": 4430}
        write(os.path.join(out, "wfe.json"), wfe)

    admin = {"sa": client(pki, "admin", "sa", "30s", 2), "ra": client(pki, "admin", "ra", "60s", 2),
             "ca": client(pki, "admin", "ca", "60s", 2), "sa_config": os.path.join(d, "app1", "sa.json")}
    write(os.path.join(d, "admin.json"), admin)


def patroni(d):
    for db in DBS:
        base = os.path.join(d, db)
        a = ADDR[db]
        # JSON is YAML: Patroni reads this file as is.
        cfg = {
            "scope": "anvil", "namespace": "/anvil/", "name": db,
            "log": {"level": "INFO"},
            "restapi": {"listen": "%s:%d" % (a, PATRONI_PORT),
                        "connect_address": "%s:%d" % (a, PATRONI_PORT)},
            "etcd3": {"hosts": ["%s:2379" % ADDR["etcd"]]},
            "bootstrap": {
                "dcs": {
                    # Failover timers small for a test cluster: the leader
                    # key lives 8 s without renewal, loops every second.
                    "ttl": 8, "loop_wait": 1, "retry_timeout": 3,
                    "maximum_lag_on_failover": 1048576,
                    # Every commit waits for one standby: no acknowledged
                    # certificate is lost when the primary dies.
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "parameters": {"wal_level": "replica", "hot_standby": "on",
                                       "max_wal_senders": 10, "max_replication_slots": 10,
                                       "wal_log_hints": "on", "max_connections": 100,
                                       "wal_keep_size": "64MB"},
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                # Trust inside the private test network only.
                "pg_hba": ["local all all trust",
                           "host replication replicator %s0/24 trust" % NET,
                           "host all all %s0/24 trust" % NET],
            },
            "postgresql": {
                "listen": "%s:%d" % (a, PG_PORT), "connect_address": "%s:%d" % (a, PG_PORT),
                "data_dir": os.path.join(base, "data"), "bin_dir": pg_bin(),
                "pgpass": os.path.join(base, "pgpass"),
                "authentication": {"replication": {"username": "replicator", "password": "x"},
                                   "superuser": {"username": "postgres", "password": "x"},
                                   "rewind": {"username": "postgres", "password": "x"}},
                "parameters": {"unix_socket_directories": base, "shared_buffers": "32MB",
                               "statement_timeout": 0},
                "pg_hba": ["local all all trust",
                           "host replication replicator %s0/24 trust" % NET,
                           "host all all %s0/24 trust" % NET],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }
        write(os.path.join(base, "patroni.yml"), json.dumps(cfg, indent=2) + "\n")


def pg_bin():
    vers = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".") if x.isdigit()])
    return "/usr/lib/postgresql/%s/bin" % vers[-1]


def haproxy(d):
    wfes = "".join("    server wfe%d %s:%d check port %d inter 1s fall 3 rise 2 on-marked-down shutdown-sessions\n"
                   % (i + 1, ADDR[a], ACME_PORT, DEBUG_PORT["wfe"]) for i, a in enumerate(APPS))
    # When every WFE fails its check (each reports a dependency it cannot
    # reach), send clients to them anyway rather than refusing everyone.
    wfes += "".join("    server wfe%d-last %s:%d backup\n" % (i + 1, ADDR[a], ACME_PORT)
                    for i, a in enumerate(APPS))
    dbs = "".join("    server %s %s:%d check port %d\n" % (db, ADDR[db], PG_PORT, PATRONI_PORT)
                  for db in DBS)
    cfg = """# HAProxy of the test cluster (scripts/cluster.sh): TCP pass-through, the
# WFEs terminate TLS. A WFE is checked on its debug /healthz (which fails
# while its RA or SA is unreachable).
global
    maxconn 4000

defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A WFE's /healthz asks its RA and SA (2 s at most, failing over between
    # both instances): a slower check must not take a healthy WFE out.
    timeout check 3s

frontend acme
    bind {lb}:{acme}
    default_backend wfes

backend wfes
    balance leastconn
    option allbackups
    option httpchk GET /healthz
    http-check expect status 200
{wfes}
# The PostgreSQL leader (Patroni answers 200 on /primary only there); the
# SAs use libpq multi-host instead, this port is for operators and tools.
frontend pg
    bind {lb}:{pgl}
    default_backend pgleader

backend pgleader
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
{dbs}""".format(lb=ADDR["lb"], acme=ACME_PORT, wfes=wfes, pgl=PG_LEADER_PORT, dbs=dbs)
    write(os.path.join(d, "lb", "haproxy.cfg"), cfg)


def main():
    top, d = sys.argv[1], sys.argv[2]
    services(top, d)
    patroni(d)
    haproxy(d)
    write(os.path.join(d, "addresses.json"), ADDR)


if __name__ == "__main__":
    main()
