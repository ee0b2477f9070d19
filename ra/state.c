/*
 * state.c - pure arithmetic: GCRA token buckets and order status.
 */
#include <string.h>

#include "ra/ra.h"

/* See ra.h. */
int
ra_gcra(int64_t tat_ms, int64_t now_ms, int64_t emission_ms, int64_t burst,
    int64_t cost, int64_t *new_tat, int64_t *retry_after_ms, int64_t *remaining)
{
	int64_t tat = tat_ms > now_ms ? tat_ms : now_ms;
	int64_t cap = burst * emission_ms;
	int64_t next = tat + cost * emission_ms;
	int64_t diff = next - now_ms;

	if (emission_ms <= 0 || burst <= 0) {
		*new_tat = tat_ms;
		*retry_after_ms = 0;
		*remaining = burst;
		return 1;
	}
	if (diff > cap) {
		*new_tat = tat_ms;
		*retry_after_ms = diff - cap;
		*remaining = (cap - (tat - now_ms)) / emission_ms;
		if (*remaining < 0)
			*remaining = 0;
		return 0;
	}
	*new_tat = next;
	*retry_after_ms = 0;
	*remaining = (cap - diff) / emission_ms;
	return 1;
}

/* See ra.h. */
const char *
ra_order_status(const char *stored, int64_t expires_ms, int64_t now_ms,
    const char *const *authz_status, size_t nauthz)
{
	size_t i, valid = 0;

	if (stored != NULL &&
	    (strcmp(stored, "processing") == 0 ||
		strcmp(stored, "valid") == 0 || strcmp(stored, "invalid") == 0))
		return stored[0] == 'p' ? "processing"
		    : stored[0] == 'v'  ? "valid"
					: "invalid";
	if (expires_ms <= now_ms)
		return "invalid";
	for (i = 0; i < nauthz; i++) {
		const char *s = authz_status[i];
		if (s == NULL)
			continue;
		if (strcmp(s, "invalid") == 0 ||
		    strcmp(s, "deactivated") == 0 ||
		    strcmp(s, "expired") == 0 || strcmp(s, "revoked") == 0)
			return "invalid";
		if (strcmp(s, "valid") == 0)
			valid++;
	}
	if (nauthz > 0 && valid == nauthz)
		return "ready";
	return "pending";
}
