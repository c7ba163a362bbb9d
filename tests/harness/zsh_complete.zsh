# zsh_complete.zsh - zsh -f zsh_complete.zsh COMPDIR OUT LINE...
# Completes each LINE (a TAB after it) in an interactive zsh on a
# pseudo-terminal, with compinit and COMPDIR first in fpath, and appends to
# OUT, for each, a line "=== N" and then every candidate offered (what
# compadd was given), one a line.  tests/integration/test_completion.py
# uses it to check _etlctl through the real completion system.
zmodload zsh/zpty
compdir=$1 out=$2
shift 2
zpty z zsh -f -i
# waits until the shell prints the number 1000+n (its echo shows the sum unevaluated)
sync() { zpty -w z "print \$((1000+$1))"; zpty -r z junk "*$((1000 + $1))*" || exit 2 }
zpty -w z "PS1='> '; fpath=($compdir \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "compadd() { local -a hits; builtin compadd -A hits \"\$@\"; print -rl -- \$hits >> $out; builtin compadd \"\$@\"; }"
zpty -w z "zstyle ':completion:*' menu no"
# TAB completes, then notes in OUT that it is done: nothing more is typed
# until then (zsh may drop typeahead while it completes)
zpty -w z "zle -C etl-complete complete-word _main_complete"
zpty -w z "etl-tab() { zle etl-complete; print -r -- '--- done' >> $out }; zle -N etl-tab; bindkey '^I' etl-tab"
sync 0
n=0
for line in "$@"; do
  (( n++ ))
  zpty -w z "print -r -- '=== $n' >> $out"
  sync $n
  zpty -w -n z "$line"$'\t'
  for (( tries = 0; tries < 600; tries++ )); do
    [[ $(grep -c -- '^--- done' $out) -ge $n ]] && break
    sleep 0.05
  done
  (( tries < 600 )) || { print -u2 "completion of '$line' did not end"; exit 3 }
  zpty -w -n z $'\C-u'
  sync $((n + 500))
done
zpty -d z
