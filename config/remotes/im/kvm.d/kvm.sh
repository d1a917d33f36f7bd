#!/bin/sh
# kvm.sh <hid> <host>: the kvm IM probe's identity part (spec/DRIVERS.md §4):
# HYPERVISOR, HOSTNAME, ARCH, whether /dev/kvm is usable (KVM=yes: domains
# run with type='kvm', else 'qemu'), and libvirt's view when virsh answers:
# LIBVIRT_VERSION, QEMU_VERSION, and CPUSPEED_LIBVIRT from `virsh nodeinfo`.

set -e

echo "HYPERVISOR=kvm"
echo "HOSTNAME=\"$(uname -n)\""
echo "ARCH=$(uname -m)"
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    echo "KVM=yes"
else
    echo "KVM=no"
fi

uri=${LIBVIRT_URI:-qemu:///system}
if command -v virsh >/dev/null 2>&1; then
    if version=$(LANG=C virsh -c "$uri" version 2>/dev/null); then
        printf '%s\n' "$version" | awk '
            /Using library: libvirt/ { print "LIBVIRT_VERSION=" $NF }
            /Running hypervisor: QEMU/ { print "QEMU_VERSION=" $NF }'
        LANG=C virsh -c "$uri" nodeinfo 2>/dev/null | awk -F: '
            /CPU frequency/ { gsub(/[^0-9]/, "", $2); if ($2 != "") print "CPUSPEED_LIBVIRT=" $2 }'
        echo "LIBVIRT=yes"
    else
        echo "LIBVIRT=no"
    fi
else
    echo "LIBVIRT=no"
fi
