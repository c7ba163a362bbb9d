# etlctl.bash - bash completion for etlctl, installed as
# DATADIR/bash-completion/completions/etlctl (bash-completion loads it on
# first use).  Completes commands, options, pipelines, steps, states,
# configuration keys after --set, and job ids.  Pipelines, steps and job ids
# come from etld when it answers (`etlctl version`, `etlctl --json list`,
# two seconds at most, on the --socket given on the line if any); keys from
# `etlctl keys`, which needs no etld.  tests/integration/test_completion.py drives it.

# The --socket option of the line being completed, for the helpers below.
_etlctl_socket_args()
{
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        if [[ ${COMP_WORDS[i]} == --socket ]]; then
            printf '%s\n' --socket "${COMP_WORDS[i + 1]}"
            return
        fi
    done
}

# Runs etlctl quietly, giving up after two seconds.
_etlctl_run()
{
    local -a sock
    mapfile -t sock < <(_etlctl_socket_args)
    if command -v timeout >/dev/null 2>&1; then
        timeout 2 "${COMP_WORDS[0]}" "${sock[@]}" "$@" 2>/dev/null
    else
        "${COMP_WORDS[0]}" "${sock[@]}" "$@" 2>/dev/null
    fi
}

# The pipelines etld runs; the four it has always run when it does not answer.
_etlctl_pipelines()
{
    local line names=""
    while IFS= read -r line; do
        if [[ $line == "pipelines: "* ]]; then
            names=${line#pipelines: }
            names=${names//,/}
        fi
    done < <(_etlctl_run version)
    printf '%s\n' "${names:-etl stage provision teardown}"
}

# The names of the steps of etld's pipelines; nothing when etld does not answer.
_etlctl_steps()
{
    _etlctl_run --json version | grep -o '"steps":\[[^]]*\]' | grep -o '"[^"]*"' |
        grep -v '"steps"' | tr -d '"' | sort -u
}

# The ids of recent jobs, newest first; nothing when etld does not answer.
_etlctl_jobs()
{
    _etlctl_run --json list --limit 50 | grep -o '"id":[0-9]*' | cut -d: -f2
}

_etlctl()
{
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="submit status list watch cancel retry errors logs backup metrics ping version keys help"
    local common="--json --socket --debug --help"

    # The command is the first word that is neither an option nor an
    # option's value; npos counts the arguments after it.
    local i cmd="" npos=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket | --config | --set | --key | --limit | --pipeline | --state | --since | --step) ((i++)) ;;
            -*) ;;
            *) [[ -z $cmd ]] && cmd=${COMP_WORDS[i]} || ((npos++)) ;;
        esac
    done

    case $prev in
        --socket)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --config)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --set)
            COMPREPLY=($(compgen -W "$(_etlctl_run keys | cut -d' ' -f1)" -- "$cur"))
            # the value follows the key: no space after it
            COMPREPLY=("${COMPREPLY[@]/%/=}")
            compopt -o nospace 2>/dev/null
            return
            ;;
        --pipeline)
            COMPREPLY=($(compgen -W "$(_etlctl_pipelines)" -- "$cur"))
            return
            ;;
        --state)
            COMPREPLY=($(compgen -W "queued running succeeded failed cancelled" -- "$cur"))
            return
            ;;
        --step)
            COMPREPLY=($(compgen -W "$(_etlctl_steps)" -- "$cur"))
            return
            ;;
        --key | --limit | --since)
            return
            ;;
    esac

    if [[ $cur == -* ]]; then
        local opts=$common
        case $cmd in
            "") opts="$common --version" ;;
            submit) opts="--config --set --key --wait $common" ;;
            list) opts="--limit --pipeline --state --key --since $common" ;;
            errors) opts="--limit $common" ;;
            logs) opts="--step $common" ;;
            retry) opts="--wait $common" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    # Positional arguments: only the first one after the command.
    case $cmd in
        "") COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        submit) ((npos == 0)) && COMPREPLY=($(compgen -W "$(_etlctl_pipelines)" -- "$cur")) ;;
        status | watch | cancel | retry | errors | logs)
            ((npos == 0)) && COMPREPLY=($(compgen -W "$(_etlctl_jobs)" -- "$cur"))
            ;;
        backup) ((npos == 0)) && COMPREPLY=($(compgen -f -- "$cur")) ;;
        help) ((npos == 0)) && COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    esac
}
complete -F _etlctl etlctl
