/* misc.c - randomness, hashing and file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/core.h"

void
random_bytes(uint8_t *buf, size_t n)
{
	if (n > 0 && RAND_bytes(buf, (int)n) != 1) {
		log_error("RAND_bytes failed: no randomness, aborting");
		abort();
	}
}

char *
random_token(size_t nbytes)
{
	uint8_t buf[256];

	if (nbytes > sizeof(buf))
		nbytes = sizeof(buf);
	random_bytes(buf, nbytes);
	return b64url_encode(buf, nbytes);
}

void
sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
	SHA256(data, len, out);
}

int
file_read_all(const char *path, size_t maxlen, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	int fd = -1, rc = -1;
	char *buf = NULL;
	size_t cap = 4096, len = 0;
	ssize_t r;

	*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > maxlen) {
			snprintf(err, errlen, "%s: larger than %zu bytes", path,
			    maxlen);
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	if (outlen != NULL)
		*outlen = len;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int
file_check_secret_mode(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
		    "%s: secret file is accessible by group "
		    "or others (mode %04o); run chmod 600 on it",
		    path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}
