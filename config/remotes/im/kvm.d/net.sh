#!/bin/sh
# net.sh <hid> <host>: NETRX and NETTX, the bytes received and sent by all
# interfaces but loopback, from /proc/net/dev (spec/DRIVERS.md §4; the
# stock probe read one hard-coded interface).

set -e

awk -F'[: ]+' 'NR > 2 {
        sub(/^ +/, "")
        split($0, f, /[: ]+/)
        if (f[1] == "lo") next
        rx += f[2]; tx += f[10]
    }
    END { printf "NETRX=%.0f\nNETTX=%.0f\n", rx, tx }' /proc/net/dev
