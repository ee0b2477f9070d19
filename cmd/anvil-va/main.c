/* LIBS: va jose rpc core */
/*
 * anvil-va - the validation authority process: serves va.validate and
 * va.check_caa (docs/rpc-methods.md) over RPC; /metrics and /healthz on the
 * debug port.
 *
 *   anvil-va -c configs/dev/va.json [--check] [--user NAME]
 *
 * Everything but main lives in va/ (va_daemon.c) and the skeleton
 * (rpc_service_main). Config keys: docs/config/va.md.
 */
#include "va/va.h"

int
main(int argc, char **argv)
{
	return rpc_service_main(&va_service, argc, argv);
}
