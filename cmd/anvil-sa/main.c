/* LIBS: sa rpc core */
/*
 * anvil-sa - the storage authority: the only process holding database
 * credentials. Serves the sa.* RPC methods (docs/rpc-methods.md).
 *
 *   anvil-sa -c configs/dev/sa.json            serve
 *   anvil-sa -c configs/dev/sa.json --migrate  apply migrations, exit
 *   anvil-sa -c configs/dev/sa.json --check    validate the config, exit
 *   anvil-sa -c F --after-restore   after restoring a backup: CRL numbers
 *                                   continue upwards; exit
 *
 * Everything but main lives in sa/ (sa_daemon.c) and the skeleton
 * (rpc_service_main). Config keys: docs/config/sa.md. ANVIL_SA_DSN
 * overrides db.dsn.
 */
#include "sa/sa.h"

int
main(int argc, char **argv)
{
	return rpc_service_main(&sa_service, argc, argv);
}
