#!/bin/sh
# host-setup.sh: makes a Debian machine a cloudgate kvm host. Run as root on
# the host (`cloudgate host prepare NAME` sends it over ssh). Safe to run
# again.
#
# - installs QEMU, libvirt and the tools the kvm, ssh and shared drivers
#   use: qemu-system-x86, qemu-utils, libvirt-daemon,
#   libvirt-daemon-driver-qemu, libvirt-clients, genisoimage,
#   openssh-server;
# - makes libvirt usable where no init system runs (containers, CI): the
#   kvm group and the libvirt-qemu user and group libvirt expects, QEMU run
#   as root without relabelling (user/group root, dynamic_ownership = 0 in
#   /etc/libvirt/qemu.conf), and virtlogd and libvirtd started as daemons
#   unless already running;
# - checks that `virsh -c qemu:///system` answers.
#
# Environment: CLOUDGATE_SKIP_INSTALL=1 skips apt (packages already there).

set -e

log() {
    printf 'host-setup: %s\n' "$*" >&2
}

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

if [ "${CLOUDGATE_SKIP_INSTALL:-0}" != 1 ]; then
    packages="qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu \
libvirt-clients genisoimage openssh-server"
    missing=""
    for p in $packages; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        if ! apt-get install -y -qq --no-install-recommends $missing; then
            # A newer qemu-utils (from backports) breaks the distribution's
            # qemu-system: take both from the distribution.
            version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ { print $2 }')
            # shellcheck disable=SC2086
            apt-get install -y -qq --no-install-recommends --allow-downgrades \
                $missing "qemu-utils=$version"
        fi
    fi
fi

getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
    useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# set_conf KEY VALUE: KEY = VALUE in qemu.conf, replacing a (commented)
# setting of KEY.
conf=/etc/libvirt/qemu.conf
mkdir -p /etc/libvirt
touch "$conf"
set_conf() {
    if grep -Eq "^[#[:space:]]*$1[[:space:]]*=" "$conf"; then
        sed -i -E "s|^[#[:space:]]*$1[[:space:]]*=.*|$1 = $2|" "$conf"
    else
        printf '%s = %s\n' "$1" "$2" >> "$conf"
    fi
}
set_conf user '"root"'
set_conf group '"root"'
set_conf dynamic_ownership 0

mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt/qemu /run/sshd

running() {
    for pid in $(ls /proc 2>/dev/null | grep -E '^[0-9]+$'); do
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
            return 0
        fi
    done
    return 1
}
running virtlogd || { log "starting virtlogd"; virtlogd -d; }
if ! running libvirtd; then
    log "starting libvirtd"
    libvirtd -d
fi

tries=0
until virsh -c qemu:///system version >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        log "libvirtd does not answer; see /var/log/libvirt/libvirtd.log"
        exit 1
    fi
    sleep 1
done
if [ -c /dev/kvm ]; then
    log "ready: libvirt answers, /dev/kvm present (domains run as type kvm)"
else
    log "ready: libvirt answers, no /dev/kvm (domains run as type qemu, emulated)"
fi
