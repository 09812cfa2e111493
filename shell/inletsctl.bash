# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for inletsctl
_inletsctl() {
        local cur=${COMP_WORDS[COMP_CWORD]} verb="" i
        local verbs="list status reload renew disconnect streams check token define create delete list-hosts version"
        local opts="--user --json --no-pager --config-dir --force --help --version"
        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                        -*) ;;
                        *) verb=${COMP_WORDS[i]}; break ;;
                esac
        done
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        elif [[ -z $verb ]]; then
                COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        else
                case $verb in
                status|reload|renew|streams|disconnect)
                        local names
                        names=$(inletsctl list --json 2>/dev/null | sed -n 's/^ *"name": *"\(.*\)",$/\1/p')
                        COMPREPLY=($(compgen -W "$names" -- "$cur")) ;;
                check)
                        local defs
                        defs=$(cd /etc/inlets.d 2>/dev/null && ls *.conf 2>/dev/null | sed 's/\.conf$//')
                        COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "$defs" -- "$cur")) ;;
                esac
        fi
}
complete -F _inletsctl inletsctl
