/*
 * cmd_ca.c - `anvil-admin ca init` and `anvil-admin crl regenerate`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "cmd/anvil-admin/admin.h"

#define DEFAULT_CA_TARGET "unix:var/run/ca.sock"

/* See admin.h. */
int
admin_ca_init(int argc, char **argv)
{
	const char *dir = "var/pki";
	char err[1024];
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else {
			fprintf(stderr, "usage: anvil-admin ca init "
			    "[--dir DIR]\n");
			return 2;
		}
	}
	if (ca_ceremony_init(dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "anvil-admin ca init: %s\n", err);
		return 1;
	}
	log_audit(NULL, "ca-init", "dir=%s", dir);
	printf("created in %s: root.pem root2.pem int-ecdsa.pem "
	    "int-ecdsa-cross.pem int-rsa.pem (+ .key files, mode 0600), "
	    "roots.pem, issuers.json\n", dir);
	return 0;
}

/* One ca.generate_crl; prints the result line. 0 or -1. */
static int
regen_one(struct rpc_client *c, const char *issuer, int64_t shard)
{
	json_t *params, *res = NULL;
	struct problem *p = NULL;
	int rc = 0;

	params = json_pack("{s:s, s:I}", "issuer_id", issuer, "shard",
	    (json_int_t)shard);
	if (rpc_call(c, "ca.generate_crl", params, 0, NULL, &res, &p) != 0) {
		fprintf(stderr, "issuer %s shard %lld: %s: %s\n", issuer,
		    (long long)shard, prob_type_name(p->type),
		    p->detail ? p->detail : "");
		rc = -1;
	} else {
		printf("issuer %s shard %lld number %lld\n", issuer,
		    (long long)shard, (long long)json_integer_value(
		    json_object_get(res, "number")));
	}
	json_decref(params);
	json_decref(res);
	problem_free(p);
	return rc;
}

/* See admin.h. */
int
admin_crl_regenerate(int argc, char **argv)
{
	const char *target = DEFAULT_CA_TARGET, *only_issuer = NULL;
	struct rpc_client *c = NULL;
	struct problem *p = NULL;
	json_t *res = NULL, *is;
	int64_t shards, s, only_shard = -1;
	size_t k;
	int i, failed = 0, done = 0, rc = 1;
	char *end;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
			target = argv[++i];
		else if (strcmp(argv[i], "--issuer") == 0 && i + 1 < argc)
			only_issuer = argv[++i];
		else if (strcmp(argv[i], "--shard") == 0 && i + 1 < argc) {
			only_shard = strtoll(argv[++i], &end, 10);
			if (*end != '\0' || only_shard < 0) {
				fprintf(stderr, "--shard: not a number\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: anvil-admin crl regenerate "
			    "[--ca TARGET] [--issuer ID] [--shard N]\n");
			return 2;
		}
	}
	if ((c = admin_client(target, "ca")) == NULL)
		goto out;
	if (rpc_call(c, "ca.get_issuers", NULL, 0, NULL, &res, &p) != 0) {
		fprintf(stderr, "anvil-admin: ca.get_issuers: %s\n",
		    p->detail ? p->detail : prob_type_name(p->type));
		goto out;
	}
	shards = json_integer_value(json_object_get(res, "crl_shards"));
	if (shards <= 0)
		shards = 1;
	json_array_foreach(json_object_get(res, "issuers"), k, is) {
		const char *id = json_string_value(json_object_get(is, "id"));
		if (id == NULL || (only_issuer && strcmp(id, only_issuer)))
			continue;
		for (s = 0; s < shards; s++) {
			if (only_shard >= 0 && s != only_shard)
				continue;
			done++;
			if (regen_one(c, id, s) != 0)
				failed++;
		}
	}
	if (done == 0) {
		fprintf(stderr, "anvil-admin: no such issuer or shard\n");
		goto out;
	}
	log_audit(NULL, "crl-regenerate", "shards=%d failed=%d", done, failed);
	rc = failed ? 1 : 0;
out:
	json_decref(res);
	problem_free(p);
	rpc_client_free(c);
	return rc;
}
