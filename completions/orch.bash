# bash completion for orch(1): commands, options, script files, and the entry ids of a running
# orch, asked through its control socket (`orch status --json`, with the --control or --name
# already on the command line). Installed as bash-completion/completions/orch.

# The entry ids of the orch that the words on the command line designate (none if it is not
# running; at most 2 s).
_orch_ids()
{
    local i sock=()
    for ((i = 2; i < ${#COMP_WORDS[@]}; i++)); do
        case ${COMP_WORDS[i]} in
            --control | --name) [[ $i -lt $COMP_CWORD ]] && sock+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
            --control=* | --name=*) sock+=("${COMP_WORDS[i]}") ;;
        esac
    done
    local json
    json=$(timeout 2 "${COMP_WORDS[0]}" status --json "${sock[@]}" 2>/dev/null) || return 0
    # Only entries have an "id" key; an escaped quote inside a message cannot match.
    grep -o '"id":"[^"\\]*"' <<<"$json" | sed 's/^"id":"//; s/"$//'
}

# The names of the orchs whose control sockets are in the default directory.
_orch_names()
{
    local dir
    if [[ $EUID -eq 0 ]]; then
        dir=/run/orch
    elif [[ -n ${XDG_RUNTIME_DIR-} ]]; then
        dir=$XDG_RUNTIME_DIR/orch
    else
        dir=/tmp/orch-$EUID
    fi
    local f
    for f in "$dir"/*.sock; do
        [[ -S $f ]] && { f=${f##*/}; printf '%s\n' "${f%.sock}"; }
    done
}

_orch_options()
{
    local o
    case $1 in
        run) o="--until-ready --log-format --no-color --color --timestamps --status-file
            --log-lines --log-dir --no-contain --name --control --no-control --watch --ui -h
            --help" ;;
        check) o="-h --help" ;;
        graph) o="--format -h --help" ;;
        status) o="--json -w --watch --no-color --color --control --name -h --help" ;;
        logs) o="-n --lines -f --follow --json --timestamps --since --reopen --no-color --color
            --control --name -h --help" ;;
        stop | start | restart | signal) o="--json --control --name" ;;
        shutdown) o="--no-wait --json --control --name" ;;
        reload) o="--full --json --control --name" ;;
        ui) o="--control --name -h --help" ;;
        timeline) o="--format -o --output --width --no-color --color --control --name -h
            --help" ;;
        '') o="-h --help -V --version" ;;
    esac
    # split on purpose (no glob characters in the list); printf, as echo would take -n
    # shellcheck disable=SC2086
    printf '%s\n' $o
}

_orch()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands='run check graph status logs stop start restart signal shutdown reload ui
        timeline'
    COMPREPLY=()

    # The value of an option that takes one.
    case $prev in
        --log-format) mapfile -t COMPREPLY < <(compgen -W 'text json' -- "$cur"); return ;;
        --format)
            local formats='dot mermaid'
            [[ ${COMP_WORDS[1]} == timeline ]] && formats='svg term'
            mapfile -t COMPREPLY < <(compgen -W "$formats" -- "$cur"); return ;;
        -o | --output) compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
        --width) return ;;
        --control | --status-file) compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
        --name) mapfile -t COMPREPLY < <(compgen -W "$(_orch_names)" -- "$cur"); return ;;
        -n | --lines) mapfile -t COMPREPLY < <(compgen -W 'all 10 100 1000' -- "$cur"); return ;;
        --log-lines | --since) return ;;
        --log-dir) compopt -o dirnames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    esac

    # The command, and the positional arguments before the current word.
    local i cmd='' npos=0 word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            --log-format | --format | --control | --status-file | --name | --lines | -n | --log-lines \
                | --log-dir | --since | -o | --output | --width)
                ((i++)) ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=$word; else ((npos++)); fi ;;
        esac
    done

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_orch_options "$cmd")" -- "$cur")
        return
    fi
    if [[ -z $cmd ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        # `orch main.lua` is `orch run main.lua`
        [[ ${#COMPREPLY[@]} -eq 0 ]] && cmd=run
        [[ -n $cmd ]] || return
    fi
    case $cmd in
        run | check | graph)
            compopt -o filenames 2>/dev/null
            if [[ $npos -eq 0 ]]; then
                mapfile -t COMPREPLY < <(compgen -d -- "$cur"; compgen -f -X '!*.lua' -- "$cur")
            else
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi ;;
        status | stop | start | restart)
            [[ $npos -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -W "$(_orch_ids)" -- "$cur") ;;
        logs) mapfile -t COMPREPLY < <(compgen -W "$(_orch_ids)" -- "$cur") ;;
        ui) [[ $npos -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -W "$(_orch_names)" -- "$cur") ;;
        timeline) compopt -o filenames 2>/dev/null
            [[ $npos -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        signal)
            if [[ $npos -eq 0 ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_orch_ids)" -- "$cur")
            elif [[ $npos -eq 1 ]]; then
                mapfile -t COMPREPLY < <(compgen -W 'HUP INT QUIT USR1 USR2 TERM KILL STOP CONT' -- "$cur")
            fi ;;
    esac
}

complete -F _orch orch
