#!/bin/sh
# mem.sh <hid> <host>: memory in KB from /proc/meminfo (spec/DRIVERS.md §4):
# TOTALMEMORY, FREEMEMORY (available, counting buffers and cache) and
# USEDMEMORY (the rest).

set -e

awk '
    /^MemTotal:/     { total = $2 }
    /^MemFree:/      { free = $2 }
    /^MemAvailable:/ { avail = $2 }
    /^Buffers:/      { buffers = $2 }
    /^Cached:/       { cached = $2 }
    END {
        if (avail == "") avail = free + buffers + cached
        print "TOTALMEMORY=" total
        print "FREEMEMORY=" avail
        print "USEDMEMORY=" total - avail
    }' /proc/meminfo
