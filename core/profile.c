/* profile.c - certificate profiles shared by the CA and the RA. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct profile_in {
	char *description;
	int64_t validity_ms;
	int64_t backdate_ms;
	int64_t max_identifiers;
	char **identifier_types;
	size_t n_identifier_types;
	int keep_cn;
	char **ekus;
	size_t n_ekus;
	int64_t order_lifetime_ms;
	int64_t authz_lifetime_ms;
	int64_t pending_authz_lifetime_ms;
	int allow_validity_request;
	int tkauth_ca;
};

#define F(n, t, m) JSPEC_FIELD(struct profile_in, n, t, m)
static const struct jspec profile_spec[] = {
    F("description", JSPEC_STRING, description),
    {"validity", JSPEC_DURATION, offsetof(struct profile_in, validity_ms), 1,
	NULL, 0},
    F("backdate", JSPEC_DURATION, backdate_ms),
    F("max_identifiers", JSPEC_INT, max_identifiers),
    {"identifier_types", JSPEC_STRINGS,
	offsetof(struct profile_in, identifier_types), 0, NULL,
	offsetof(struct profile_in, n_identifier_types)},
    F("keep_cn", JSPEC_BOOL, keep_cn),
    {"ekus", JSPEC_STRINGS, offsetof(struct profile_in, ekus), 0, NULL,
	offsetof(struct profile_in, n_ekus)},
    F("order_lifetime", JSPEC_DURATION, order_lifetime_ms),
    F("authz_lifetime", JSPEC_DURATION, authz_lifetime_ms),
    F("pending_authz_lifetime", JSPEC_DURATION, pending_authz_lifetime_ms),
    F("allow_validity_request", JSPEC_BOOL, allow_validity_request),
    F("tkauth_ca", JSPEC_BOOL, tkauth_ca),
    JSPEC_END,
};
#undef F

void
profiles_free(struct profiles *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->count; i++) {
		free(p->list[i].name);
		free(p->list[i].description);
	}
	free(p->list);
	free(p->default_name);
	free(p);
}

/* A profile's list entry (identifier type or EKU) and the flag it sets. */
struct profile_flag {
	const char *name;
	size_t offset; /* of an int in struct profile */
};

static const struct profile_flag ident_flags[] = {
    {"dns", offsetof(struct profile, allow_dns)},
    {"ip", offsetof(struct profile, allow_ip)},
    {"email", offsetof(struct profile, allow_email)},
    {"permanent-identifier", offsetof(struct profile, allow_permanent_id)},
    {"hardware-module", offsetof(struct profile, allow_hardware_module)},
    {"bundleEID", offsetof(struct profile, allow_bundle_eid)},
    {"remote-attestation", offsetof(struct profile, allow_remote_attestation)},
    {"TNAuthList", offsetof(struct profile, allow_tnauthlist)},
    {NULL, 0},
};

static const struct profile_flag eku_flags[] = {
    {"serverAuth", offsetof(struct profile, eku_server_auth)},
    {"clientAuth", offsetof(struct profile, eku_client_auth)},
    {"emailProtection", offsetof(struct profile, eku_email_protection)},
    {"bundleSecurity", offsetof(struct profile, eku_bundle_security)},
    {NULL, 0},
};

/* See core.h. */
int
profile_allows_ident(const struct profile *p, enum ident_type t)
{
	const char *name = ident_type_name(t);
	const struct profile_flag *f;

	for (f = ident_flags; f->name != NULL; f++)
		if (strcmp(f->name, name) == 0)
			return *(const int *)((const char *)p + f->offset);
	return 0;
}

/* Sets the flag of each of values[0..n) (borrowed) from table on out; an
 * unknown value is a config error naming profiles.<name>.<key> and listing
 * the known ones. */
static int
profile_set_flags(struct profile *out, const struct profile_flag *table,
    const char *key, char **values, size_t n, const char *path,
    const char *name, char *err, size_t errlen)
{
	const struct profile_flag *f;
	size_t i, len;

	for (i = 0; i < n; i++) {
		for (f = table; f->name; f++)
			if (strcmp(f->name, values[i]) == 0)
				break;
		if (f->name != NULL) {
			*(int *)((char *)out + f->offset) = 1;
			continue;
		}
		len = (size_t)snprintf(err, errlen,
		    "%s: profiles.%s.%s: unknown value \"%s\" (known:", path,
		    name, key, values[i]);
		for (f = table; f->name && len < errlen; f++)
			len += (size_t)snprintf(
			    err + len, errlen - len, " %s", f->name);
		if (len < errlen)
			snprintf(err + len, errlen - len, ")");
		return -1;
	}
	return 0;
}

static int
profile_from_in(struct profile *out, const char *name,
    const struct profile_in *in, const char *path, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->name = xstrdup(name);
	out->description = xstrdup(in->description ? in->description : name);
	out->validity_ms = in->validity_ms;
	out->backdate_ms = in->backdate_ms;
	out->max_identifiers = in->max_identifiers;
	out->keep_cn = in->keep_cn;
	out->order_lifetime_ms = in->order_lifetime_ms;
	out->authz_lifetime_ms = in->authz_lifetime_ms;
	out->pending_authz_lifetime_ms = in->pending_authz_lifetime_ms;
	out->allow_validity_request = in->allow_validity_request;
	out->tkauth_ca = in->tkauth_ca;
	if (out->validity_ms <= 0) {
		snprintf(err, errlen,
		    "%s: profiles.%s.validity: must be "
		    "positive",
		    path, name);
		return -1;
	}
	if (out->max_identifiers <= 0 || out->max_identifiers > 1000) {
		snprintf(err, errlen,
		    "%s: profiles.%s.max_identifiers: must be "
		    "1..1000",
		    path, name);
		return -1;
	}
	if (profile_set_flags(out, ident_flags, "identifier_types",
		in->identifier_types, in->n_identifier_types, path, name, err,
		errlen) != 0 ||
	    profile_set_flags(out, eku_flags, "ekus", in->ekus, in->n_ekus, path,
		name, err, errlen) != 0)
		return -1;
	/* S/MIME and TLS certificates never share a profile: an email
	 * identifier only in an emailProtection-only profile, and that EKU
	 * never beside serverAuth/clientAuth or a DNS/IP identifier. */
	if ((out->allow_email || out->eku_email_protection) &&
	    (!out->allow_email || !out->eku_email_protection ||
		out->allow_dns || out->allow_ip || out->eku_server_auth ||
		out->eku_client_auth)) {
		snprintf(err, errlen,
		    "%s: profiles.%s: an S/MIME profile has identifier_types "
		    "[\"email\"] and ekus [\"emailProtection\"] only (RFC "
		    "8823 certificates are not TLS certificates)",
		    path, name);
		return -1;
	}
	/* RFC 9891 §7: "When a bundle security certificate is issued based
	 * on a validated NODE-ID, the certificate SHALL include an Extended
	 * Key Usage of id-kp-bundleSecurity"; such certificates are not TLS
	 * or S/MIME certificates, so the two come only together and alone. */
	if ((out->allow_bundle_eid || out->eku_bundle_security) &&
	    (!out->allow_bundle_eid || !out->eku_bundle_security ||
		out->eku_server_auth || out->eku_client_auth ||
		out->eku_email_protection || out->allow_email ||
		out->allow_permanent_id || out->allow_hardware_module)) {
		snprintf(err, errlen,
		    "%s: profiles.%s: a bundle security profile has "
		    "identifier_types \"bundleEID\" (with dns/ip if wanted) "
		    "and ekus [\"bundleSecurity\"] only (RFC 9891 §7; not a "
		    "TLS or S/MIME profile)",
		    path, name);
		return -1;
	}
	/* RFC 8226 STIR certificates are not TLS certificates either: a
	 * TNAuthList profile has that identifier type alone and no EKU. */
	if (out->allow_tnauthlist &&
	    (in->n_identifier_types != 1 || in->n_ekus != 0)) {
		snprintf(err, errlen,
		    "%s: profiles.%s: a STIR profile has identifier_types "
		    "[\"TNAuthList\"] only and no ekus (RFC 8226 certificates "
		    "are not TLS certificates)",
		    path, name);
		return -1;
	}
	if (out->tkauth_ca && !out->allow_tnauthlist) {
		snprintf(err, errlen,
		    "%s: profiles.%s.tkauth_ca: only for a STIR profile "
		    "(identifier_types [\"TNAuthList\"], RFC 9448 §5)",
		    path, name);
		return -1;
	}
	return 0;
}

struct profiles *
profiles_parse(const json_t *obj, const char *path, char *err, size_t errlen)
{
	struct profiles *p = NULL;
	const char *key, *name;
	json_t *v, *list;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: expected an object", path);
		return NULL;
	}
	json_object_foreach((json_t *)obj, key, v)
	{
		if (strcmp(key, "default") != 0 &&
		    strcmp(key, "profiles") != 0) {
			snprintf(err, errlen, "%s: %s: unknown key", path, key);
			return NULL;
		}
	}
	list = json_object_get(obj, "profiles");
	if (!json_is_object(list) || json_object_size(list) == 0) {
		snprintf(err, errlen,
		    "%s: profiles: required, a non-empty "
		    "object",
		    path);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->list = xcalloc(json_object_size(list), sizeof(*p->list));
	json_object_foreach(list, name, v)
	{
		struct profile_in in;
		char inner[400];
		int rc;

		memset(&in, 0, sizeof(in));
		in.max_identifiers = 100;
		in.backdate_ms = 3600 * 1000LL;
		in.keep_cn = 1;
		in.order_lifetime_ms = 7 * 86400 * 1000LL;
		in.authz_lifetime_ms = 30 * 86400 * 1000LL;
		in.pending_authz_lifetime_ms = 7 * 86400 * 1000LL;
		in.allow_validity_request = 1;
		if (jspec_parse(v, profile_spec, &in, inner, sizeof(inner)) !=
		    0) {
			snprintf(err, errlen, "%s: profiles.%s.%s", path, name,
			    inner);
			jspec_clear(profile_spec, &in);
			goto bad;
		}
		if (in.n_identifier_types == 0) {
			in.identifier_types = xcalloc(3, sizeof(char *));
			in.identifier_types[0] = xstrdup("dns");
			in.identifier_types[1] = xstrdup("ip");
			in.n_identifier_types = 2;
		}
		if (in.n_ekus == 0 &&
		    !(in.n_identifier_types == 1 &&
			strcmp(in.identifier_types[0], "TNAuthList") == 0)) {
			int smime = in.n_identifier_types == 1 &&
			    strcmp(in.identifier_types[0], "email") == 0;
			in.ekus = xcalloc(2, sizeof(char *));
			in.ekus[0] =
			    xstrdup(smime ? "emailProtection" : "serverAuth");
			in.n_ekus = 1;
		}
		rc = profile_from_in(
		    &p->list[p->count], name, &in, path, err, errlen);
		p->count++;
		jspec_clear(profile_spec, &in);
		if (rc != 0)
			goto bad;
	}
	v = json_object_get(obj, "default");
	if (v != NULL && !json_is_string(v)) {
		snprintf(err, errlen, "%s: default: expected a string", path);
		goto bad;
	}
	p->default_name = xstrdup(v ? json_string_value(v) : p->list[0].name);
	if (profiles_find(p, p->default_name) == NULL) {
		snprintf(err, errlen, "%s: default: no profile named \"%s\"",
		    path, p->default_name);
		goto bad;
	}
	return p;
bad:
	profiles_free(p);
	return NULL;
}

struct profiles *
profiles_load(const char *path, char *err, size_t errlen)
{
	json_t *j = config_load_file(path, err, errlen);
	struct profiles *p;

	if (j == NULL)
		return NULL;
	p = profiles_parse(j, path, err, errlen);
	json_decref(j);
	return p;
}

const struct profile *
profiles_find(const struct profiles *p, const char *name)
{
	size_t i;

	if (p == NULL)
		return NULL;
	if (name == NULL || *name == '\0')
		name = p->default_name;
	for (i = 0; i < p->count; i++)
		if (strcmp(p->list[i].name, name) == 0)
			return &p->list[i];
	return NULL;
}

/* See core.h. */
int
profile_validity_window(const struct profile *p, time_t nb, time_t na,
    time_t now, time_t *not_before, time_t *not_after)
{
	*not_before = nb ? nb : now - (time_t)(p->backdate_ms / 1000);
	*not_after = na ? na
			: *not_before + (time_t)(p->validity_ms / 1000) - 1;
	if (*not_after <= *not_before ||
	    (int64_t)(*not_after - *not_before + 1) * 1000 > p->validity_ms)
		return -1;
	return 0;
}
