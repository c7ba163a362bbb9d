#!/bin/sh
# scdoc-man.sh IN OUT - turns a manual page written for scdoc(1) (doc/*.scd)
# into roff, as doc/meson.build asks.  scdoc 1.11 (Debian 12) opens every
# paragraph with .P, also right after a heading and right before another
# block macro, where it does nothing and `mandoc -T lint` warns about it; those
# are dropped, and one that ends an indented block (.P then .RE) moves after
# the .RE, where it still parts the entries.  Every other line is scdoc's.
set -eu
scdoc < "$1" > "$2.tmp"
awk '
  /^\.P$/ {
    if (prev ~ /^\.(SH|SS)( |$)/ || held)
      next
    held = 1
    next
  }
  /^\.RE( |$)/ && held {
    print
    prev = $0
    next
  }
  {
    if (held && $0 !~ /^\.(SH|SS|RS|RE|P|TP)( |$)/)
      print ".P"
    held = 0
    print
    prev = $0
  }' "$2.tmp" > "$2"
rm -f "$2.tmp"
