/*
 * email.c - RFC 8823 email-reply-00 in the VA.
 *
 * Sending (§3.1): va.send_email_challenge (an RPC worker thread) composes
 * the challenge email, token-part1 in its Subject, DKIM-signs it and hands
 * it to the MTA over SMTP with libcurl. token-part1 is never stored: it is
 * HMAC-SHA256(secret, identifier, token-part2), so only this VA (and the
 * mailbox's owner) can know it and no database column is needed.
 *
 * Receiving (§3.2): the MTA delivers replies into a maildir; a
 * va.validate of email-reply-00 scans its new/ directory from the loop
 * thread until the reply whose Subject carries this challenge's
 * token-part1 arrives (or email.reply_timeout passes), consumes it (moves
 * it to cur/), and accepts it only when it comes From the identifier,
 * carries the right key-authorization digest and a valid DKIM signature
 * by the From domain (key looked up with c-ares).
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/nameser.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "va/va_int.h"

#define MAIL_MAX_BYTES (256 * 1024)
#define RESP_BEGIN "-----BEGIN ACME RESPONSE-----"
#define RESP_END "-----END ACME RESPONSE-----"

struct va_email {
	uint8_t secret[32];
	EVP_PKEY *dkim_key; /* NULL: challenge emails go out unsigned */
};

struct va_email_job {
	char *token1;   /* token-part1 of this challenge */
	char *expected; /* base64url(SHA-256(key authorization)) */
	struct va_mail mail;
	struct va_dkim_sig sig;
	int have_sig;
	char *from;
	char *msgid;
};

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

/* The secret file's bytes hashed into e->secret. 0 or -1 with err. */
static int
load_secret(struct va_email *e, const char *path, char *err, size_t errlen)
{
	uint8_t buf[4096];
	ssize_t n;
	int fd;

	if (file_check_secret_mode(path, err, errlen) != 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "email.secret_file: %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 32) {
		snprintf(err, errlen,
		    "email.secret_file: %s: needs at least 32 bytes", path);
		return -1;
	}
	sha256(buf, (size_t)n, e->secret);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* See va_int.h. */
int
va_email_new(const struct va_config *cfg, struct va_email **out, char *err,
    size_t errlen)
{
	struct va_email *e;
	FILE *f;

	*out = NULL;
	if (cfg->email_smtp_url == NULL && cfg->email_maildir == NULL)
		return 0;
	if (cfg->email_smtp_url == NULL || cfg->email_maildir == NULL) {
		snprintf(err, errlen,
		    "email: smtp_url and maildir go together (one sends the "
		    "challenge emails, the other receives the replies)");
		return -1;
	}
	if (strncmp(cfg->email_smtp_url, "smtp://", 7) != 0 &&
	    strncmp(cfg->email_smtp_url, "smtps://", 8) != 0) {
		snprintf(err, errlen,
		    "email.smtp_url: expected smtp://host:port or "
		    "smtps://host:port");
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		snprintf(err, errlen, "email: libcurl cannot initialise");
		return -1;
	}
	e = xcalloc(1, sizeof(*e));
	if (cfg->email_secret_file != NULL) {
		if (load_secret(e, cfg->email_secret_file, err, errlen) != 0)
			goto fail;
	} else {
		/* pending challenges do not survive a restart of this VA,
		 * and several VAs would need one shared file */
		random_bytes(e->secret, sizeof(e->secret));
	}
	if (cfg->email_dkim_key_file != NULL) {
		if (cfg->email_dkim_selector == NULL ||
		    cfg->email_dkim_domain == NULL) {
			snprintf(err, errlen,
			    "email.dkim: key_file needs selector and domain");
			goto fail;
		}
		if (file_check_secret_mode(
			cfg->email_dkim_key_file, err, errlen) != 0)
			goto fail;
		if ((f = fopen(cfg->email_dkim_key_file, "r")) == NULL) {
			snprintf(err, errlen, "email.dkim.key_file: %s: %s",
			    cfg->email_dkim_key_file, strerror(errno));
			goto fail;
		}
		e->dkim_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (e->dkim_key == NULL ||
		    EVP_PKEY_get_base_id(e->dkim_key) != EVP_PKEY_RSA) {
			snprintf(err, errlen,
			    "email.dkim.key_file: %s: not an RSA private key "
			    "in PEM",
			    cfg->email_dkim_key_file);
			goto fail;
		}
	}
	*out = e;
	return 0;
fail:
	va_email_free(e);
	curl_global_cleanup();
	return -1;
}

/* See va_int.h. */
void
va_email_free(struct va_email *e)
{
	if (e == NULL)
		return;
	EVP_PKEY_free(e->dkim_key);
	OPENSSL_cleanse(e->secret, sizeof(e->secret));
	free(e);
	curl_global_cleanup();
}

/* See va_int.h. */
void
va_email_job_free(struct va_email_job *ej)
{
	if (ej == NULL)
		return;
	free(ej->token1);
	free(ej->expected);
	va_dkim_sig_clear(&ej->sig);
	va_mail_clear(&ej->mail);
	free(ej->from);
	free(ej->msgid);
	free(ej);
}

/*
 * token-part1 for (identifier, token-part2): base64url of
 * HMAC-SHA256(secret, "email-reply-00\0" identifier "\0" token), 256 bits
 * (§3.1: "at least 128 bits"). Malloc'd.
 */
static char *
token_part1(const struct va_email *e, const char *ident, const char *token)
{
	char *msg = xasprintf("email-reply-00%c%s%c%s", 0, ident, 0, token);
	size_t len =
	    strlen("email-reply-00") + 1 + strlen(ident) + 1 + strlen(token);
	uint8_t mac[32];
	unsigned maclen = 0;
	char *out;

	if (HMAC(EVP_sha256(), e->secret, sizeof(e->secret),
		(const uint8_t *)msg, len, mac, &maclen) == NULL ||
	    maclen != sizeof(mac)) {
		log_bug("HMAC-SHA256 failed");
		abort();
	}
	free(msg);
	out = b64url_encode(mac, sizeof(mac));
	return out;
}

/* ------------------------------------------------------------------ */
/* Sending (§3.1)                                                      */
/* ------------------------------------------------------------------ */

struct upload {
	const char *data;
	size_t len, off;
};

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* "<addr>" for SMTP's MAIL FROM / RCPT TO: malloc'd. */
static char *
angle(const char *addr)
{
	return xasprintf("<%s>", addr);
}

/* Hands msg to the MTA at url. 0, or -1 with err. */
static int
smtp_send(const char *url, const char *from, const char *to, const char *msg,
    char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE] = "", *mf = angle(from), *rt = angle(to);
	struct curl_slist *rcpt = NULL;
	struct upload u = {msg, strlen(msg), 0};
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_FAILED_INIT;

	if (c == NULL || (rcpt = curl_slist_append(NULL, rt)) == NULL)
		goto out;
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAIL_FROM, mf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READDATA, &u) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf) != CURLE_OK)
		goto out;
	rc = curl_easy_perform(c);
out:
	if (rc != CURLE_OK)
		snprintf(
		    err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	free(mf);
	free(rt);
	return rc == CURLE_OK ? 0 : -1;
}

/* 1 when s is safe inside a header field (printable ASCII, no CR/LF). */
static int
header_safe(const char *s)
{
	for (; *s; s++)
		if (*s < 32 || *s > 126)
			return 0;
	return 1;
}

/*
 * The challenge email (malloc'd, CRLF lines, unsigned) from norm_from to
 * norm_to with token-part1 t1 and Message-ID msgid (all borrowed).
 */
static char *
compose_challenge(const char *norm_from, const char *norm_to, const char *t1,
    const char *msgid)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* §3.1 items 1 and 2: "ACME: <token-part1>" and Auto-Submitted;
	 * the body is for the human reader only */
	return xasprintf(
	    "From: %s\r\n"
	    "To: %s\r\n"
	    "Subject: ACME: %s\r\n"
	    "Date: %s\r\n"
	    "Message-ID: %s\r\n"
	    "Auto-Submitted: auto-generated; type=acme\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "This email was sent by an ACME certificate authority "
	    "(RFC 8823) because an\r\n"
	    "S/MIME certificate was requested for %s.\r\n"
	    "\r\n"
	    "Your ACME client answers it automatically. If you did "
	    "not ask for a\r\n"
	    "certificate, ignore this email: nothing is issued "
	    "without a reply.\r\n",
	    norm_from, norm_to, t1, date, msgid, norm_to);
}

/*
 * §3.1 item 3: the challenge "MUST be signed using either DKIM [RFC6376]
 * or S/MIME". msg (borrowed) with a DKIM-Signature field prepended
 * (malloc'd), a copy when no key is configured, or NULL when signing
 * failed.
 */
static char *
dkim_signed(
    const struct va *va, const char *msg, const char *rid, const char *to)
{
	static const char hlist[] = "from:to:subject:date:message-id:"
				    "auto-submitted:mime-version:content-type:"
				    "content-transfer-encoding";
	const struct va_config *cfg = va->cfg;
	struct va_mail m;
	char *sig, *out;

	if (va->email->dkim_key == NULL) {
		log_msg(LOG_LEVEL_WARN, rid,
		    "email: no email.dkim key: the challenge email to %s goes "
		    "out unsigned (RFC 8823 §3.1 item 3 wants DKIM or S/MIME)",
		    to);
		return xstrdup(msg);
	}
	if (va_mail_parse(msg, strlen(msg), &m) != 0)
		return NULL;
	sig = va_dkim_sign(&m, va->email->dkim_key, cfg->email_dkim_domain,
	    cfg->email_dkim_selector, hlist, (int64_t)time(NULL));
	va_mail_clear(&m);
	if (sig == NULL)
		return NULL;
	out = xasprintf("%s\r\n%s", sig, msg);
	free(sig);
	return out;
}

/* See va.h. */
int
va_email_send_challenge(struct va *va, const char *to, const char *from,
    const char *token, const char *request_id, char **message_id,
    struct problem **prob)
{
	char *t1 = NULL, *msg = NULL, *signed_msg = NULL;
	char *norm_to = NULL, *norm_from = NULL, e[200], id[33];
	uint8_t rnd[16];
	size_t i;
	int rc = -1;

	*message_id = NULL;
	if (va->email == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "email-reply-00 is not configured on this VA (no \"email\" "
		    "section)");
		return -1;
	}
	norm_to = ident_email_normalize(to, e, sizeof(e));
	norm_from = ident_email_normalize(from, e, sizeof(e));
	if (norm_to == NULL || norm_from == NULL || !header_safe(token) ||
	    strlen(token) > 128) {
		*prob = problem_new(PROB_MALFORMED,
		    "identifier, from and token must be an email address, "
		    "an email address and a base64url token");
		goto out;
	}
	t1 = token_part1(va->email, norm_to, token);
	random_bytes(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	*message_id =
	    xasprintf("<%s.acme@%s>", id, strrchr(norm_from, '@') + 1);
	msg = compose_challenge(norm_from, norm_to, t1, *message_id);
	if ((signed_msg = dkim_signed(va, msg, request_id, norm_to)) == NULL) {
		*prob = problem_new(PROB_SERVER_INTERNAL,
		    "cannot DKIM-sign the challenge email");
		goto out;
	}
	if (smtp_send(va->cfg->email_smtp_url, norm_from, norm_to, signed_msg,
		e, sizeof(e)) != 0) {
		*prob = problem_new(PROB_UNAVAILABLE,
		    "the challenge email to %s could not be handed to the "
		    "MTA: %s",
		    norm_to, e);
		goto out;
	}
	log_audit(request_id, "email-challenge-sent", "to=%s message_id=%s",
	    norm_to, *message_id);
	rc = 0;
out:
	if (rc != 0) {
		free(*message_id);
		*message_id = NULL;
	}
	free(t1);
	free(msg);
	free(signed_msg);
	free(norm_to);
	free(norm_from);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Receiving (§3.2)                                                    */
/* ------------------------------------------------------------------ */

/* The addr-spec of a From value ("Name <a@b>" or "a@b"), malloc'd. */
static char *
from_addr(const char *v)
{
	const char *lt = strrchr(v, '<'), *gt;

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL)
		return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	return xstrdup(v);
}

/* Same mailbox: local parts equal, domains equal ignoring case. */
static int
same_address(const char *a, const char *b)
{
	const char *ea = strrchr(a, '@'), *eb = strrchr(b, '@');

	return ea != NULL && eb != NULL && ea - a == eb - b &&
	    strncmp(a, b, (size_t)(ea - a)) == 0 && strcasecmp(ea, eb) == 0;
}

/* token-part1 of a Subject value ("Re: ACME: <t>"): whitespace removed
 * (§3.1 item 1: the subject "can be folded"); malloc'd or NULL. */
static char *
subject_token(const char *subj)
{
	const char *p = strstr(subj, "ACME:");
	char *out, *o;

	if (p == NULL)
		return NULL;
	out = o = xmalloc(strlen(p) + 1);
	for (p += 5; *p; p++)
		if (*p != ' ' && *p != '\t')
			*o++ = *p;
	*o = '\0';
	return out;
}

/* The response in the body (§3.2): the text between the markers with
 * whitespace removed; malloc'd or NULL. */
static char *
response_of(const char *body)
{
	const char *b = strstr(body, RESP_BEGIN), *e;
	char *out, *o;

	if (b == NULL)
		return NULL;
	b += strlen(RESP_BEGIN);
	if ((e = strstr(b, RESP_END)) == NULL || e - b > 1024)
		return NULL;
	out = o = xmalloc((size_t)(e - b) + 1);
	for (; b < e; b++)
		if (*b != ' ' && *b != '\t' && *b != '\r' && *b != '\n')
			*o++ = *b;
	*o = '\0';
	return out;
}

/*
 * §3.2: "the DKIM-Signature header field MUST contain the h= tag that
 * includes at least" these fields; Anvil requires each of them that the
 * reply carries to be signed (a field the reply lacks cannot be).
 */
static const char *const must_sign[] = {"From", "Sender", "Reply-To", "To",
    "CC", "Subject", "Date", "In-Reply-To", "References", "Message-ID",
    "Content-Type", "Content-Transfer-Encoding"};

static void
add_record(struct va_job *j, struct va_email_job *ej)
{
	json_t *r = json_pack("{s:s}", "from", ej->from);

	if (ej->msgid != NULL)
		json_object_set_new(r, "messageId", json_string(ej->msgid));
	if (ej->have_sig) {
		json_object_set_new(r, "dkimDomain", json_string(ej->sig.d));
		json_object_set_new(r, "dkimSelector", json_string(ej->sig.s));
	}
	if (j->record == NULL)
		j->record = json_array();
	json_array_append_new(j->record, r);
}

/* The DKIM key record arrived (loop thread). */
static void
dkim_key_cb(void *arg, struct va_dns_result *res)
{
	struct va_job *j = arg;
	struct va_email_job *ej = j->email;
	char err[300] = "";
	EVP_PKEY *key;
	size_t i;
	int ok = 0;

	if (j->finished) {
		va_job_unref(j);
		return;
	}
	if (res->status != VA_DNS_OK) {
		va_job_finish(j,
		    problem_new(PROB_DNS,
			"DNS problem: no DKIM key record at "
			"%s._domainkey.%s: %s",
			ej->sig.s, ej->sig.d,
			res->msg[0] ? res->msg
				    : va_dns_status_name(res->status)));
		va_job_unref(j);
		return;
	}
	for (i = 0; i < res->ntxt && !ok; i++) {
		key = va_dkim_key_from_txt(res->txt[i], err, sizeof(err));
		if (key != NULL)
			ok = va_dkim_verify(&ej->mail, &ej->sig, key, err,
				 sizeof(err)) == 0;
		EVP_PKEY_free(key);
	}
	add_record(j, ej);
	if (ok)
		va_job_finish(j, NULL);
	else
		va_job_finish(j,
		    problem_new(PROB_UNAUTHORIZED,
			"The reply's DKIM signature does not verify: %s "
			"(RFC 8823 §3.2 requires a valid DKIM or S/MIME "
			"signature)",
			err[0] ? err : "no usable key record"));
	va_job_unref(j);
}

/*
 * Picks the DKIM signature by the From domain and checks what needs no
 * DNS: tags, the signed fields, expiry, the body hash. NULL, or the
 * problem.
 */
static struct problem *
check_dkim_local(struct va_email_job *ej)
{
	const char *dom = strrchr(ej->from, '@') + 1;
	char err[200] = "";
	size_t i, k;

	for (i = 0; i < ej->mail.nh && !ej->have_sig; i++) {
		if (strcasecmp(ej->mail.h[i].name, "DKIM-Signature") != 0)
			continue;
		if (va_dkim_sig_parse(
			&ej->mail.h[i], &ej->sig, err, sizeof(err)) != 0) {
			va_dkim_sig_clear(&ej->sig);
			continue;
		}
		if (strcasecmp(ej->sig.d, dom) == 0)
			ej->have_sig = 1;
		else
			va_dkim_sig_clear(&ej->sig);
	}
	if (!ej->have_sig)
		return problem_new(PROB_UNAUTHORIZED,
		    "The reply carries no usable DKIM signature by %s, the "
		    "domain of its From address%s%s (RFC 8823 §3.2: the "
		    "response \"MUST\" be DKIM or S/MIME signed; Anvil "
		    "accepts DKIM)",
		    dom, err[0] ? ": " : "", err);
	for (k = 0; k < sizeof(must_sign) / sizeof(must_sign[0]); k++) {
		if (va_mail_count(&ej->mail, must_sign[k]) > 0 &&
		    !va_dkim_signs_header(&ej->sig, must_sign[k]))
			return problem_new(PROB_UNAUTHORIZED,
			    "The reply's DKIM signature does not cover its %s "
			    "field (RFC 8823 §3.2 lists the fields h= must "
			    "include)",
			    must_sign[k]);
	}
	if (ej->sig.x != NULL && strtoll(ej->sig.x, NULL, 10) < time(NULL))
		return problem_new(PROB_UNAUTHORIZED,
		    "The reply's DKIM signature has expired (x=%s)", ej->sig.x);
	if (!va_dkim_body_hash_ok(&ej->mail, &ej->sig))
		return problem_new(PROB_UNAUTHORIZED,
		    "The reply's body does not match its DKIM body hash "
		    "(bh=): it was changed after signing");
	return NULL;
}

/*
 * The reply to this challenge (ej->mail) is here: From, response, then
 * DKIM. NULL when the DKIM key lookup was started (it finishes the job),
 * else the problem.
 */
static struct problem *
check_reply(struct va_job *j, struct va_email_job *ej)
{
	const struct va_mail_hdr *h;
	struct problem *p;
	char *v, *resp;
	int ok;

	if (va_mail_count(&ej->mail, "From") != 1 ||
	    (h = va_mail_find(&ej->mail, "From")) == NULL)
		return problem_new(PROB_UNAUTHORIZED,
		    "The reply must have exactly one From field");
	v = va_mail_value(h);
	ej->from = from_addr(v);
	free(v);
	if ((h = va_mail_find(&ej->mail, "Message-ID")) != NULL)
		ej->msgid = va_mail_value(h);
	/* §3.2: the reply comes from the address being validated */
	if (!same_address(ej->from, j->ident)) {
		add_record(j, ej);
		return problem_new(PROB_UNAUTHORIZED,
		    "The reply comes from %.200s, not from %s, the address "
		    "being validated (RFC 8823 §3.2)",
		    ej->from, j->ident);
	}
	resp = response_of(ej->mail.body);
	ok = resp != NULL && strlen(resp) == strlen(ej->expected) &&
	    CRYPTO_memcmp(resp, ej->expected, strlen(resp)) == 0;
	free(resp);
	if (!ok) {
		add_record(j, ej);
		return problem_new(PROB_INCORRECT_RESPONSE,
		    "The reply's ACME response is not base64url(SHA-256(key "
		    "authorization)) for token-part1 || token-part2 and this "
		    "account's key (RFC 8823 §3.2)");
	}
	if ((p = check_dkim_local(ej)) != NULL) {
		add_record(j, ej);
		return p;
	}
	{
		char *name =
		    xasprintf("%s._domainkey.%s", ej->sig.s, ej->sig.d);
		j->stage = "dns";
		va_job_ref(j);
		va_dns_query(j->va, name, ns_t_txt, dkim_key_cb, j);
		free(name);
	}
	return NULL;
}

/* Reads a maildir file (at most MAIL_MAX_BYTES); malloc'd or NULL. */
static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAIL_MAX_BYTES) {
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/*
 * One pass over maildir/new: 1 when this challenge's reply was found (the
 * job is finished or waits for DNS), 0 when not yet.
 */
static int
scan_maildir(struct va_job *j)
{
	struct va_email_job *ej = j->email;
	const char *md = j->va->cfg->email_maildir;
	char *dir = xasprintf("%s/new", md), *path, *data, *tok, *dst;
	const struct va_mail_hdr *h;
	struct dirent *de;
	struct problem *p;
	size_t len = 0;
	DIR *d = opendir(dir);
	int found = 0;

	if (d == NULL) {
		log_msg(LOG_LEVEL_WARN, j->rid, "email: cannot open %s: %s",
		    dir, strerror(errno));
		free(dir);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		data = read_file(path, &len);
		if (data != NULL && va_mail_parse(data, len, &ej->mail) == 0) {
			h = va_mail_find(&ej->mail, "Subject");
			tok = NULL;
			if (h != NULL) {
				char *v = va_mail_value(h);
				tok = subject_token(v);
				free(v);
			}
			if (tok != NULL && strcmp(tok, ej->token1) == 0)
				found = 1;
			else
				va_mail_clear(&ej->mail);
			free(tok);
		}
		if (found) {
			/* consumed: a reply counts for one validation only */
			dst = xasprintf("%s/cur/%s:2,S", md, de->d_name);
			if (rename(path, dst) != 0)
				log_msg(LOG_LEVEL_WARN, j->rid,
				    "email: cannot move %s to cur/: %s", path,
				    strerror(errno));
			free(dst);
		}
		free(data);
		free(path);
	}
	closedir(d);
	free(dir);
	if (!found)
		return 0;
	if ((p = check_reply(j, ej)) != NULL)
		va_job_finish(j, p);
	return 1;
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct va_job *j = arg;
	int64_t ms = j->va->cfg->email_poll_ms;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (j->finished || scan_maildir(j))
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(j->retry_ev, &tv) != 0)
		va_job_finish(j,
		    problem_new(
			PROB_SERVER_INTERNAL, "VA: cannot arm a timer"));
}

/* See va_int.h. */
void
va_emailreply00_start(struct va_job *j)
{
	struct va_email_job *ej;
	char *ka;
	uint8_t d[32];

	if (j->va->email == NULL) {
		va_job_finish(j,
		    problem_new(PROB_SERVER_INTERNAL,
			"email-reply-00 is not configured on this VA"));
		return;
	}
	ej = xcalloc(1, sizeof(*ej));
	j->email = ej;
	ej->token1 = token_part1(j->va->email, j->ident, j->token);
	/* §3.2: the key authorization is built from the whole token,
	 * token-part1 || token-part2; the RA sent token-part2 "." thumbprint */
	ka = xasprintf("%s%s", ej->token1, j->keyauth);
	sha256((const uint8_t *)ka, strlen(ka), d);
	free(ka);
	ej->expected = b64url_encode(d, sizeof(d));
	j->stage = "email";
	/* the poll timer lives in retry_ev, which the job life cycle
	 * (va.c) deletes and frees with the job */
	j->retry_ev = evtimer_new(j->va->base, poll_cb, j);
	if (j->retry_ev == NULL) {
		va_job_finish(j,
		    problem_new(
			PROB_SERVER_INTERNAL, "VA: cannot arm a timer"));
		return;
	}
	poll_cb(-1, 0, j);
}
