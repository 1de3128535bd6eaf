# SPDX-License-Identifier: Apache-2.0
# bash completion of xlbctl: commands, subcommands, flags and their values, and the VIPs and
# backend addresses of the running xlbd (asked with `xlbctl -j vip list` / `backend list`, with
# the connection flags already typed; nothing is offered when xlbd does not answer in 2 s).
#
# Install: source this file, or copy it to /usr/share/bash-completion/completions/xlbctl.
# tests/unit/xlbctl_test.cpp checks that the lists below match xlbctl's command table.

_xlbctl_top="status vip backend stats health plan lookup events help"
_xlbctl_global_flags="--socket --tcp --token-file --timeout --json -j --help"

# Subcommands of a group.
_xlbctl_subcommands() {
	case "$1" in
	"vip") echo "list show add del" ;;
	"backend") echo "list add del set" ;;
	"events") echo "push" ;;
	esac
}

# The flags of a command.
_xlbctl_command_flags() {
	case "$1" in
	"vip add") echo "--name --ring-size --no-lru --hash --gue --icmp-too-big --no-rate-guard" ;;
	"backend add") echo "--weight --state" ;;
	"backend set") echo "--weight --drain --undrain --disable" ;;
	"stats") echo "--watch --interval --count" ;;
	"plan") echo "--remove --add --set --weight --drain --undrain" ;;
	"lookup") echo "--from" ;;
	"events push") echo "--source --replace" ;;
	esac
}

# Commands whose first argument is a VIP.
_xlbctl_takes_vip() {
	case "$1" in
	"vip show" | "vip del" | "backend list" | "backend add" | "backend del" | "backend set" | \
		"stats" | "health" | "plan" | "lookup") return 0 ;;
	esac
	return 1
}

_xlbctl_vips() {
	"${_xlbctl_conn[@]}" --timeout 2 -j vip list 2>/dev/null |
		sed -n 's/^ *"vip": "\([^"]*\)".*/\1/p'
}

_xlbctl_backends() {
	[[ -n "$1" ]] || return
	"${_xlbctl_conn[@]}" --timeout 2 -j backend list "$1" 2>/dev/null |
		sed -n 's/^ *"address": "\([^"]*\)".*/\1/p'
}

_xlbctl() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		# -n : keeps "198.18.200.1:80/tcp" one word (':' is in COMP_WORDBREAKS).
		_init_completion -n := || return
	else
		# Without bash-completion: COMP_WORDS is split at ':' too, so split the line anew.
		local line="${COMP_LINE:0:COMP_POINT}"
		read -ra words <<<"$line"
		[[ "$line" == *[[:space:]] || ${#words[@]} -eq 0 ]] && words+=("")
		cword=$((${#words[@]} - 1))
		cur="${words[cword]}"
		prev="${words[cword - 1]}"
	fi

	# Walk the words before the cursor: connection flags (kept for the queries), the command
	# and its positional arguments.
	_xlbctl_conn=("${words[0]}")
	local -a pos=()
	local i w skip=""
	for ((i = 1; i < cword; i++)); do
		w="${words[i]}"
		if [[ -n "$skip" ]]; then
			[[ "$skip" == conn ]] && _xlbctl_conn+=("$w")
			skip=""
			continue
		fi
		case "$w" in
		--socket | --tcp | --token-file | --timeout)
			_xlbctl_conn+=("$w")
			skip=conn
			;;
		--socket=* | --tcp=* | --token-file=* | --timeout=*) _xlbctl_conn+=("$w") ;;
		--name | --ring-size | --hash | --weight | --state | --interval | --count | --remove | \
			--add | --set | --from | --source)
			skip=value
			;;
		-*) ;;
		*) pos+=("$w") ;;
		esac
	done

	local cmd="" nargs=0
	if [[ ${#pos[@]} -ge 1 ]]; then
		cmd="${pos[0]}"
		nargs=$((${#pos[@]} - 1))
		if [[ -n "$(_xlbctl_subcommands "$cmd")" && ${#pos[@]} -ge 2 ]]; then
			cmd="$cmd ${pos[1]}"
			nargs=$((${#pos[@]} - 2))
		fi
	fi
	local vip=""
	if _xlbctl_takes_vip "$cmd" && [[ $nargs -ge 1 ]]; then
		vip="${pos[${#pos[@]} - nargs]}"
	fi

	local words_list=""
	case "$prev" in
	--socket | --token-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--hash) words_list="5tuple src no-sport" ;;
	--state) words_list="active draining disabled" ;;
	--interval) words_list="500ms 1s 2s 5s" ;;
	--remove | --set) words_list="$(_xlbctl_backends "$vip")" ;;
	--tcp | --timeout | --name | --ring-size | --weight | --count | --add | --from | --source)
		return
		;;
	esac

	if [[ -z "$words_list" ]]; then
		if [[ "$cur" == -* ]]; then
			words_list="$_xlbctl_global_flags $(_xlbctl_command_flags "$cmd")"
		elif [[ -z "$cmd" ]]; then
			words_list="$_xlbctl_top"
		elif [[ "$cmd" == help && $nargs -eq 0 ]]; then
			words_list="$_xlbctl_top"
		elif [[ "$cmd" == help && $nargs -eq 1 ]]; then
			words_list="$(_xlbctl_subcommands "${pos[1]}")"
		elif [[ -n "$(_xlbctl_subcommands "$cmd")" ]]; then
			words_list="$(_xlbctl_subcommands "$cmd")"
		elif _xlbctl_takes_vip "$cmd" && [[ $nargs -eq 0 ]]; then
			words_list="$(_xlbctl_vips)"
		elif [[ ("$cmd" == "backend del" || "$cmd" == "backend set") && $nargs -eq 1 ]]; then
			words_list="$(_xlbctl_backends "$vip")"
		elif [[ "$cmd" == "events push" && $nargs -eq 0 ]]; then
			COMPREPLY=($(compgen -f -- "$cur"))
			return
		fi
	fi
	COMPREPLY=($(compgen -W "$words_list" -- "$cur"))
	# bash replaces only what follows the last ':' of the word: drop what is already typed.
	if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
		local typed="${cur%"${cur##*:}"}" j
		for j in "${!COMPREPLY[@]}"; do
			COMPREPLY[j]="${COMPREPLY[j]#"$typed"}"
		done
	fi
}

complete -F _xlbctl xlbctl
