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

# The image ids of the data directory the words on the command line designate.
_orch_images()
{
    local i data=()
    for ((i = 2; i < ${#COMP_WORDS[@]}; i++)); do
        case ${COMP_WORDS[i]} in
            --data | --name) [[ $i -lt $COMP_CWORD ]] && data+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
            --data=* | --name=*) data+=("${COMP_WORDS[i]}") ;;
        esac
    done
    timeout 2 "${COMP_WORDS[0]}" image ls --json "${data[@]}" 2>/dev/null |
        grep -o '"id":"[^"\\]*"' | sed 's/^"id":"//; s/"$//'
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
            --log-lines --log-dir --no-contain --name --control --no-control --watch --ui --data
            -h --help" ;;
        check) o="--data --name -h --help" ;;
        image) o="--ref --json --data --name -h --help" ;;
        graph) o="--format -h --help" ;;
        export) o="-o --output --strict --name --registry --host-image --orch-image --orch --data
            -h --help" ;;
        import) o="--strict -h --help" ;;
        probe) o="--wait --data -h --help" ;;
        test) o="--timeline -h --help" ;;
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
    local commands='run check graph export import probe image test status logs stop start restart
        signal shutdown reload ui timeline'
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
        --log-dir | --data | --timeline) compopt -o dirnames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
        --ref) return ;;
    esac

    # The command, and the positional arguments before the current word.
    local i cmd='' npos=0 word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            --log-format | --format | --control | --status-file | --name | --lines | -n | --log-lines \
                | --log-dir | --since | --data | --ref | -o | --output | --registry | --host-image \
                | --orch | --timeline | --width)
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
        export | import)
            if [[ $npos -eq 0 ]]; then
                local formats='k8s compose systemd'
                [[ $cmd == import ]] && formats=compose
                mapfile -t COMPREPLY < <(compgen -W "$formats" -- "$cur")
            else
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -d -- "$cur"; compgen -f -- "$cur")
            fi ;;
        probe)
            compopt -o filenames 2>/dev/null
            [[ $npos -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -d -- "$cur"
                compgen -f -X '!*.lua' -- "$cur") ;;
        run | check | graph)
            compopt -o filenames 2>/dev/null
            if [[ $npos -eq 0 ]]; then
                mapfile -t COMPREPLY < <(compgen -d -- "$cur"; compgen -f -X '!*.lua' -- "$cur")
            else
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi ;;
        test) compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur"; compgen -f -X '!*.lua' -- "$cur") ;;
        status | stop | start | restart)
            [[ $npos -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -W "$(_orch_ids)" -- "$cur") ;;
        logs) mapfile -t COMPREPLY < <(compgen -W "$(_orch_ids)" -- "$cur") ;;
        ui) [[ $npos -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -W "$(_orch_names)" -- "$cur") ;;
        image)
            local sub=''
            for ((i = 2; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                    --data | --name | --ref) ((i++)) ;;
                    -*) ;;
                    *) sub=${COMP_WORDS[i]}; break ;;
                esac
            done
            if [[ $npos -eq 0 ]]; then
                mapfile -t COMPREPLY < <(compgen -W 'import ls rm' -- "$cur")
            elif [[ $sub == import && $npos -eq 1 ]]; then
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            elif [[ $sub == rm ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_orch_images)" -- "$cur")
            fi ;;
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
