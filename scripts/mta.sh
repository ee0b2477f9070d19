#!/bin/sh
# mta.sh - a private Postfix instance for RFC 8823 email-reply-00
# (docs/email.md): never the system's /etc/postfix instance.
#
#   scripts/mta.sh DIR LISTEN DOMAIN...
#
# DIR     its own config_directory (DIR/etc), queue_directory (DIR/queue),
#         data_directory (DIR/data), log (DIR/maillog) and mailboxes
#         (DIR/mail/<domain>/, one maildir per domain)
# LISTEN  loopback address:port of its SMTP server, e.g. 127.0.0.1:8025
# DOMAIN  the mail domains it delivers locally, each into its maildir; the
#         VA watches the one of its challenge From address
#
# Runs in the foreground (a launcher service, configs/dev/anvil.json) until
# SIGTERM/SIGINT, then stops Postfix. Needs root (Postfix's master does).
set -eu

[ $# -ge 3 ] || { echo "usage: $0 DIR LISTEN DOMAIN..." >&2; exit 2; }
dir=$1
listen=$2
shift 2
domains="$*"

# Postfix's daemons (user postfix) and virtual(8) (the mailbox owner) must
# reach every directory, which a private 0700 test directory forbids: the
# instance lives in its own /var/tmp directory and DIR is a symlink to it
# (removed again when the instance stops).
case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
if [ -e "$dir" ] && [ ! -L "$dir" ]; then
	echo "mta.sh: $dir exists and is not this script's symlink" >&2
	exit 1
fi
mkdir -p "$(dirname "$dir")"
real=$(mktemp -d /var/tmp/anvil-mta.XXXXXX)
chmod 755 "$real"
ln -sfn "$real" "$dir"
etc=$real/etc

case $listen in
127.*:[0-9]*|\[::1\]:[0-9]*) ;;
*) echo "mta.sh: LISTEN must be a loopback address:port, not $listen" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "mta.sh: Postfix's master needs root" >&2; exit 1; }

# The mailboxes belong to an unprivileged user (virtual(8) refuses root):
# the VA reads and moves them as root (tests, make run) or as that user.
owner=${ANVIL_MTA_USER:-nobody}
uid=$(id -u "$owner")
gid=$(id -g "$owner")

mkdir -p "$etc" "$real/queue" "$real/data" "$real/mail"
for d in $domains; do
	mkdir -p "$real/mail/$d/new" "$real/mail/$d/cur" "$real/mail/$d/tmp"
done
chown -R "$uid:$gid" "$real/mail"
chown postfix "$real/data"

# One maildir per domain, DIR/mail/<domain>/, for all its addresses (a
# catch-all: Postfix allows no substitution in virtual_mailbox_maps).
: > "$etc/vmailbox"
for d in $domains; do
	printf '@%s %s/\n' "$d" "$d" >> "$etc/vmailbox"
done

cat > "$etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $etc
queue_directory = $real/queue
data_directory = $real/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $real/maillog
maillog_file_prefixes = $real
myhostname = mx.anvil.test
mydomain = anvil.test
myorigin = \$myhostname
inet_interfaces = ${listen%:*}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtputf8_enable = no
biff = no
virtual_mailbox_domains = $domains
virtual_mailbox_base = $real/mail
virtual_mailbox_maps = texthash:$etc/vmailbox
virtual_minimum_uid = 1
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
EOF

# Debian's services, without chroot (this instance has no chroot tree),
# with SMTP on the private port instead of 25.
awk -v listen="$listen" '
	/^#/ || /^[ \t]/ || NF < 8 { print; next }
	{
		if ($1 == "smtp" && $2 == "inet") $1 = listen
		if ($5 == "y" || $5 == "-") $5 = "n"
		print
	}' /etc/postfix/master.cf > "$etc/master.cf"

cleanup() {
	postfix -c "$etc" stop >/dev/null 2>&1 || true
	[ "$(readlink "$dir")" = "$real" ] && rm -f "$dir"
	rm -rf "$real"
}
stop() {
	cleanup
	exit 0
}
trap stop TERM INT

postfix -c "$etc" start || { cleanup; exit 1; }
pid=$(tr -d ' ' < "$real/queue/pid/master.pid")
echo "ANVIL_MTA=smtp://$listen ($dir)"

# Wait for the master to go away (or for a signal).
while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
	sleep 1 &
	wait $! || true
done
echo "mta.sh: Postfix master exited" >&2
cleanup
exit 1
