#!/bin/sh
# cpu.sh <hid> <host>: CPU figures (spec/DRIVERS.md §4): TOTALCPU (cores x
# 100), CPUSPEED (MHz) and MODELNAME from /proc/cpuinfo; FREECPU and
# USEDCPU from the idle share of /proc/stat between this monitoring and the
# previous one (kept in a small state file, so no sampling sleep is needed
# except on the very first run, which samples 0.5 s).

set -e

cores=$(grep -c '^processor' /proc/cpuinfo || true)
[ "${cores:-0}" -gt 0 ] || cores=1
total=$((cores * 100))
speed=$(awk -F: '/^cpu MHz/ { gsub(/ /, "", $2); split($2, a, "."); print a[1]; exit }' /proc/cpuinfo)
model=$(awk -F: '/^model name/ { sub(/^[ \t]+/, "", $2); print $2; exit }' /proc/cpuinfo | tr -d '"')

# "busy idle" jiffies of the cpu line: idle = idle + iowait.
sample() {
    awk '/^cpu / { idle = $5 + $6; busy = 0; for (i = 2; i <= NF; i++) busy += $i; print busy, idle; exit }' /proc/stat
}
state=${TMPDIR:-/tmp}/cloudgate-im-cpu.$(id -u)
now=$(sample)
prev=$(cat "$state" 2>/dev/null || true)
if [ -z "$prev" ]; then
    prev=$now
    sleep 0.5
    now=$(sample)
fi
printf '%s\n' "$now" > "$state.$$" && mv "$state.$$" "$state"
free=$(echo "$prev $now" | awk -v total="$total" '{
    dt = $3 - $1; di = $4 - $2
    if (dt <= 0) { print total; exit }
    f = int(di * total / dt); if (f < 0) f = 0; if (f > total) f = total; print f }')

echo "TOTALCPU=$total"
echo "CPUSPEED=${speed:-0}"
echo "MODELNAME=\"${model:-unknown}\""
echo "FREECPU=$free"
echo "USEDCPU=$((total - free))"
