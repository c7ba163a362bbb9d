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
sync 0
n=0
for line in "$@"; do
  (( n++ ))
  zpty -w z "print -r -- '=== $n' >> $out"
  sync $n
  zpty -w -n z "$line"$'\t'
  # ^U clears the line; the sync command only runs once the completion is done
  zpty -w -n z $'\C-u'
  sync $((n + 500))
done
zpty -d z
