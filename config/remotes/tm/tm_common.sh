# tm_common.sh: what the ssh and shared TM scripts share (sourced). They run
# on the front-end with arguments `host:path` (spec/DRIVERS.md §5) and reach
# hosts through `on` (scripts_common.sh).

. "$(dirname "$0")/../../scripts_common.sh"

# check_path PATH: refuses what no TM action may touch.
check_path() {
    case $1 in
        /*) ;;
        *) fail "$SCRIPT_NAME: not an absolute path: $1" ;;
    esac
    case $1 in
        /|//*|*/../*|*/..) fail "$SCRIPT_NAME: refusing path $1" ;;
    esac
}

# is_url SRC: an http(s) source, fetched by the host itself.
is_url() {
    case $1 in
        http://*|https://*) return 0 ;;
        *) return 1 ;;
    esac
}

# fetch_cmd URL PATH: shell text downloading URL to PATH.
fetch_cmd() {
    echo "if command -v wget >/dev/null 2>&1; then wget -q -O $(q "$2") $(q "$1"); \
else curl -fsSL -o $(q "$2") $(q "$1"); fi"
}

# mkswap_cmd SIZE_MB PATH / mkimage_cmd SIZE_MB FORMAT PATH: shell text
# making the disk (a sparse file, then mkswap / mkfs; qemu-img for image
# formats).
mkswap_cmd() {
    echo "set -e; mkdir -p $(q "$(dirname "$2")"); rm -f $(q "$2"); \
dd if=/dev/zero of=$(q "$2") bs=1 count=1 seek=$1M 2>/dev/null; \
mkswap $(q "$2") >/dev/null; chmod a+rw $(q "$2")"
}

mkimage_cmd() {
    _mk="set -e; mkdir -p $(q "$(dirname "$3")"); rm -f $(q "$3"); "
    case $2 in
        raw|qcow2|qed|vmdk|vdi)
            _mk="$_mk qemu-img create -q -f $2 $(q "$3") $1M; " ;;
        ext2|ext3|ext4)
            _mk="$_mk dd if=/dev/zero of=$(q "$3") bs=1 count=1 seek=$1M 2>/dev/null; \
mkfs -t $2 -F -q $(q "$3"); " ;;
        *)
            _mk="$_mk dd if=/dev/zero of=$(q "$3") bs=1 count=1 seek=$1M 2>/dev/null; \
mkfs -t $2 $(q "$3") >/dev/null; " ;;
    esac
    echo "$_mk chmod a+rw $(q "$3")"
}

# check_size SIZE: a whole number of MB.
check_size() {
    case $1 in
        ''|*[!0-9]*) fail "$SCRIPT_NAME: size must be a whole number of MB: $1" ;;
    esac
}

# check_word WORD: a format or file-system name, nothing a shell reads.
check_word() {
    case $1 in
        ''|*[!A-Za-z0-9_.-]*) fail "$SCRIPT_NAME: invalid name: $1" ;;
    esac
}

# shares_dir FROM TO DIR: true when host TO sees a file host FROM creates
# in DIR, i.e. the two hosts share the VM directory and a migration must
# neither copy nor remove it.
shares_dir() {
    _probe="$3/.cloudgate-probe.$$"
    on "$1" "touch $(q "$_probe")" || return 1
    if on "$2" "test -e $(q "$_probe")"; then _shared=0; else _shared=1; fi
    on "$1" "rm -f $(q "$_probe")" || true
    return $_shared
}

# migration_args "$@": sets src_host, dst_host and dir from the arguments
# of premigrate, postmigrate and failmigrate.
migration_args() {
    [ $# -ge 3 ] || fail "usage: $SCRIPT_NAME <src host> <dst host> <dir> [<vid> <dsid>]"
    src_host=$1
    dst_host=$2
    dir=$3
    check_path "$dir"
}

# drop_copy KEEP DROP DIR: removes DIR from host DROP after a live
# migration left the domain on host KEEP, unless the two share DIR.
drop_copy() {
    [ "$1" != "$2" ] || return 0
    if shares_dir "$1" "$2" "$3"; then
        return 0
    fi
    log "removing $3 from $2"
    exec_and_log "Could not remove $3 from $2" on "$2" "rm -rf $(q "$3")"
}
