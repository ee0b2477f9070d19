/* LIBS: ca rpc core */
/*
 * anvil-ca - the certificate authority: the only process holding issuer
 * keys. Serves the ca.* RPC methods (docs/rpc-methods.md) and regenerates
 * every CRL shard on a timer.
 *
 *   anvil-ca -c configs/dev/ca.json [--check] [--user NAME]
 *   anvil-ca --bench SECONDS --issuers FILE --profiles FILE [--threads N]
 *       signing speed with an in-memory store (scripts/bench-ca.sh)
 *
 * Everything but main lives in ca/ (ca_daemon.c, bench.c) and the skeleton
 * (rpc_service_main). Config keys: docs/config/ca.md.
 */
#include "ca/ca.h"

int
main(int argc, char **argv)
{
	return rpc_service_main(&ca_service, argc, argv);
}
