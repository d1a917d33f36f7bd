#!/bin/sh
# dummy.sh <hid> <host>: the dummy IM probe (spec/DRIVERS.md §9, §4).
#
# Reports a host with generous fixed capacity and nothing used, so that many
# VMs fit and the scheduler's figures stay deterministic: 8 CPUs (800),
# 16 GB (16777216 KB), overridable with DUMMY_TOTALCPU / DUMMY_TOTALMEMORY.
# CPUSPEED is in MHz, the unit of the kvm probe (DRIVERS.md §4).

set -e
. "${0%/*}/../../vmm/dummy/dummyrc"

hid=$1
host=$2

dummy_begin monitor "host-$hid"
dummy_number "${DUMMY_TOTALCPU:-}" 800
total_cpu=$dummy_value
dummy_number "${DUMMY_TOTALMEMORY:-}" 16777216
total_memory=$dummy_value
cat <<PROBE
HYPERVISOR=dummy
HOSTNAME="$host"
TOTALCPU=$total_cpu
CPUSPEED=2200
TOTALMEMORY=$total_memory
USEDMEMORY=0
FREEMEMORY=$total_memory
USEDCPU=0
FREECPU=$total_cpu
NETRX=0
NETTX=0
PROBE
dummy_end
