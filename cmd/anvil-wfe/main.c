/* LIBS: wfe jose rpc core */
/*
 * anvil-wfe - the ACME web front end.
 *
 *   anvil-wfe -c configs/dev/wfe.json [--check]
 *
 * Everything but main lives in wfe/ (wfe_daemon.c, wfe_main) and the
 * skeleton (rpc_service_main). Config keys: docs/config/wfe.md.
 */
#include "wfe/wfe.h"

int
main(int argc, char **argv)
{
	return rpc_service_main(&wfe_service, argc, argv);
}
