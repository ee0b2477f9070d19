# bash completion for anvil-admin(8)
_anvil_admin()
{
	local cur prev words cword
	_init_completion 2>/dev/null || {
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	}
	local common="--json --dry-run --config --sa --ra --ca --help"
	case $prev in
	--config | --cert-file | --key-file | --serials-file | --sa-config | --sa-bin)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--out | --dir | --run-dir | --log-dir | --bin-dir | --schema-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return ;;
	--keys) COMPREPLY=($(compgen -W "files pkcs11" -- "$cur")); return ;;
	--db) COMPREPLY=($(compgen -W "local" -- "$cur")); return ;;
	--log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
	--reason)
		COMPREPLY=($(compgen -W "unspecified keyCompromise superseded cessationOfOperation privilegeWithdrawn affiliationChanged" -- "$cur"))
		return ;;
	esac
	if [ "$cword" -eq 1 ]; then
		COMPREPLY=($(compgen -W "help setup check-config backup restore revoke block-key account cert order eab ca db crl" -- "$cur"))
		return
	fi
	local opts
	case "${words[1]} ${words[2]:-}" in
	"setup "*) opts="--host --db --keys --out --dir --force --check --root --run-dir --log-dir --bin-dir --schema-dir --tls-cert --tls-key --listen --port --pki-port --debug-port-base --user --admin-user --private-suffix --private-network --resolver --log-format" ;;
	"check-config "*) opts="--dir" ;;
	"backup "*) opts="--out --config-dir" ;;
	"restore "*) opts="--dsn --config-dir --restore-config" ;;
	"revoke "*) opts="--serial --serials-file --account --spki-sha256 --cert-file --reason --block-key" ;;
	"block-key "*) opts="--spki-sha256 --key-file --cert-file --comment --revoke" ;;
	"account "[a-z]*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "show deactivate" -- "$cur")); return; } ;;
	"cert "[a-z]*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "show list" -- "$cur")); return; }
		opts="--account --expiring-within --identifier --limit" ;;
	"order "*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "show" -- "$cur")); return; } ;;
	"eab "*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "create list revoke" -- "$cur")); return; }
		opts="--comment --kid" ;;
	"ca "*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "init" -- "$cur")); return; }
		opts="--dir --pkcs11" ;;
	"db "*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "migrate" -- "$cur")); return; }
		opts="--sa-config --sa-bin" ;;
	"crl "*) [ "$cword" -eq 2 ] && { COMPREPLY=($(compgen -W "regenerate" -- "$cur")); return; }
		opts="--issuer --shard" ;;
	esac
	COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
}
complete -F _anvil_admin anvil-admin
