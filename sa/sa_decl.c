/*
 * sa_decl.c - SA methods in declared form (GNU Taler style): a spec of the
 * request parameters bound in order as $1.. of one statement, and a spec of
 * what the answer is (a row through a column spec, a list, a command that
 * must change one row). A method that fits needs no C function of its own;
 * sa_run executes the declaration, with one error and cleanup path for all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sa/sa_int.h"

/* Keeps s (owned) until sa_params_clear, bound as the next $n. */
static void
sa_p_own(struct sa_params *p, char *s)
{
	sa_p_str(p, s);
	p->own[p->nown++] = s;
}

/* A copy of the short text s (< 40 bytes) bound as the next $n. */
static void
sa_p_copy(struct sa_params *p, const char *s)
{
	sa_p_str(p, s);
	snprintf(p->buf[p->n - 1], sizeof(p->buf[p->n - 1]), "%s", s);
	p->v[p->n - 1] = p->buf[p->n - 1];
}

/* An INT outside [min, max] (when max is set): malformed. */
static int
sa_in_range(const struct sa_in *in, int64_t v, struct problem **prob)
{
	if (in->max == 0 || (v >= in->min && v <= in->max))
		return 0;
	*prob = in->bad != NULL
	    ? problem_new(PROB_MALFORMED, "%s", in->bad)
	    : problem_new(
		  PROB_MALFORMED, "parameter %s: out of range", in->name);
	return -1;
}

/* A JSON parameter j as text bound as the next $n (at most max bytes when
 * max is set). 0, or -1 with *prob. */
static int
sa_p_json(struct sa_params *p, const struct sa_in *in, const json_t *j,
    struct problem **prob)
{
	char *text = sa_json_text(j);

	if (in->max > 0 && strlen(text) > (size_t)in->max) {
		free(text);
		*prob = problem_new(PROB_MALFORMED, "%s", in->bad);
		return -1;
	}
	sa_p_own(p, text);
	return 0;
}

/* Reads in from params and binds it as the next $n of p: 1 bound, 0
 * absent (optional, no default), -1 with *prob. */
static int
sa_bind_one(const json_t *params, const struct sa_in *in, struct sa_params *p,
    struct problem **prob)
{
	const char *s = NULL;
	char *owned = NULL;
	json_t *j = NULL;
	char t[32];
	int64_t v = 0;
	int b = 0, rc = -1;

	switch (in->kind) {
	case SA_IN_ID:
	case SA_IN_INT:
		rc = in->kind == SA_IN_ID
		    ? sa_get_id(params, in->name, in->required, &v, prob)
		    : sa_get_int(params, in->name, in->required, &v, prob);
		if (rc == 1 && sa_in_range(in, v, prob) != 0)
			return -1;
		if (rc == 1)
			sa_p_int(p, v);
		return rc;
	case SA_IN_STR:
	case SA_IN_HEX:
		rc = in->kind == SA_IN_STR
		    ? sa_get_str(params, in->name, in->required,
			  (size_t)in->max, &s, prob)
		    : sa_get_hex(params, in->name, in->required,
			  (size_t)in->max, &s, prob);
		if (rc == 1 && strlen(s) < (size_t)in->min) {
			*prob = problem_new(PROB_MALFORMED, "%s", in->bad);
			return -1;
		}
		if (rc == 1)
			sa_p_str(p, s);
		return rc;
	case SA_IN_TIME:
		rc = sa_get_time(
		    params, in->name, in->required, t, sizeof(t), prob);
		if (rc == 1)
			sa_p_copy(p, t);
		return rc;
	case SA_IN_BOOL:
		rc = sa_get_bool(params, in->name, in->required, &b, prob);
		if (rc == 1)
			sa_p_bool(p, b);
		return rc;
	case SA_IN_B64_HEX:
		rc = sa_get_b64_as_hex(params, in->name, in->required,
		    (size_t)in->max, &owned, prob);
		if (rc == 1)
			sa_p_own(p, owned);
		return rc;
	case SA_IN_OBJECT:
	case SA_IN_ARRAY:
		rc = sa_get_json(params, in->name, in->required,
		    in->kind == SA_IN_OBJECT ? JSON_OBJECT : JSON_ARRAY, &j, prob);
		if (rc == 1 && sa_p_json(p, in, j, prob) != 0)
			return -1;
		return rc;
	}
	return rc;
}

/* See sa_int.h. */
int
sa_bind(const json_t *params, const struct sa_in *in, size_t n,
    struct sa_params *p, struct problem **prob)
{
	size_t i;
	int rc;

	sa_params_init(p);
	for (i = 0; i < n; i++) {
		if ((rc = sa_bind_one(params, &in[i], p, prob)) < 0) {
			sa_params_clear(p);
			return -1;
		}
		if (rc == 0)
			sa_p_str(p, in[i].dflt);
	}
	return 0;
}

/* See sa_int.h. */
void
sa_params_clear(struct sa_params *p)
{
	for (int i = 0; i < p->nown; i++) {
		OPENSSL_cleanse(p->own[i], strlen(p->own[i]));
		free(p->own[i]);
	}
	sa_params_init(p);
}

/* The problem d answers with when its one row is not there: its detail
 * may name $1 and $2 (%s, %s). */
static struct problem *
sa_decl_fail(const struct sa_decl *d, const struct sa_params *p)
{
	return problem_new(d->fail, d->detail, p->n > 0 ? p->v[0] : "",
	    p->n > 1 && p->v[1] != NULL ? p->v[1] : "");
}

/* d's list: {key: [each row by cols]}, or with one column without a key,
 * [its values]. */
static json_t *
sa_decl_list(const struct sa_decl *d, const PGresult *r)
{
	json_t *list = json_array(), *o;
	int i;

	for (i = 0; i < PQntuples(r); i++) {
		if (d->row != NULL)
			o = d->row(r, i);
		else if (d->cols[0].key == NULL)
			o = sa_col_json(r, i, 0, d->cols[0].kind);
		else {
			o = json_object();
			sa_row_json(o, r, i, d->cols, d->ncols);
		}
		json_array_append_new(list, o);
	}
	return json_pack("{s:o}", d->key, list);
}

/* See sa_int.h. */
int
sa_run(struct sa_conn *c, const struct sa_decl *d, json_t *params,
    json_t **result, struct problem **prob)
{
	struct sa_params p;
	PGresult *r;
	int ret = -1;

	if (sa_bind(params, d->in, d->nin, &p, prob) != 0)
		return -1;
	r = NULL;
	if (d->check != NULL && d->check(params, &p, prob) != 0)
		goto out;
	if ((r = sa_q(c, d->st, &p, prob)) == NULL) {
		if (d->sqlstate != NULL && sa_sqlstate_is(c, d->sqlstate)) {
			problem_free(*prob);
			*prob = problem_new(d->state_fail, "%s", d->state_detail);
		}
		goto out;
	}
	switch (d->out) {
	case SA_OUT_ROW:
	case SA_OUT_CHANGED:
		if ((d->out == SA_OUT_ROW ? PQntuples(r)
					  : atoi(PQcmdTuples(r))) != 1) {
			*prob = sa_decl_fail(d, &p);
			goto out;
		}
		/* the object: the one $1 names, or the one the row does */
		if (d->reply != NULL) {
			if (d->reply(c,
				strtoll(d->out == SA_OUT_ROW ? sa_col(r, 0, 0)
							     : p.v[0],
				    NULL, 10),
				result, prob) != 0)
				goto out;
			break;
		}
		*result = json_object();
		sa_row_json(*result, r, 0, d->cols, d->ncols);
		break;
	case SA_OUT_LIST:
		*result = sa_decl_list(d, r);
		break;
	case SA_OUT_DONE:
		*result = json_object();
		break;
	}
	ret = 0;
out:
	PQclear(r);
	sa_params_clear(&p);
	return ret;
}
