#!/bin/sh
# Prints the sanitizer reports written to directory $1 (log_path) and fails when there is one.
[ -n "$(ls -A "$1" 2>/dev/null)" ] || exit 0
for report in "$1"/*; do
    echo "== $report"
    cat "$report"
done
echo "sanitizer reports: $(ls "$1" | wc -l), above"
exit 1
