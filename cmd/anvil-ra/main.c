/* LIBS: ra jose rpc core */
/*
 * anvil-ra - the registration authority process.
 *
 *   anvil-ra -c configs/dev/ra.json [--check] [--user NAME]
 *
 * Reads the config, connects (lazily) to anvil-sa / anvil-va / anvil-ca,
 * serves /metrics and /healthz on the debug port (healthy when all three
 * answer health.check), recovers orders left in `processing` by a crash,
 * then serves the ra.* RPC methods until SIGTERM/SIGINT. Everything but
 * main lives in ra/ (ra_daemon.c) and the skeleton (rpc_service_main).
 */
#include "ra/ra.h"

int
main(int argc, char **argv)
{
	return rpc_service_main(&ra_service, argc, argv);
}
