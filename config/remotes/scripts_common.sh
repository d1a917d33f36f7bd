# scripts_common.sh: helpers for the real drivers' scripts (sourced, not
# run), after OpenNebula's (spec/DRIVERS.md §1.4 "Output conventions").
#
#   log MSG            INFO: <script>: MSG on stderr (the driver logs it)
#   error_message MSG  the ERROR MESSAGE block the driver reports
#   fail MSG           error_message MSG, then exit 1
#   exec_and_log MSG CMD...
#                      runs CMD (its stdout goes to stderr, as log); on
#                      failure reports "MSG: <CMD's last stderr lines>" and
#                      exits with CMD's status
#   arg_host H:P / arg_path H:P
#                      the host / the path of a host:path argument (split
#                      at the first ':')
#   q WORD             WORD quoted for a remote shell
#   is_front_end HOST  true if HOST names the front-end (the machine the
#                      TM scripts run on): CLOUDGATE_FRONT_END, else this
#                      machine's name
#   on HOST CMD        runs shell text CMD on HOST: here for the front-end,
#                      else over ssh ($CLOUDGATE_SSH: cloudgate's ssh with
#                      its shared master connections; plain ssh otherwise)

SCRIPT_NAME=$(basename "$0")
SSH=${CLOUDGATE_SSH:-ssh}

log() {
    printf 'INFO: %s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

error_message() {
    printf '%s\n%s\n%s\n' 'ERROR MESSAGE --8<------' "$*" 'ERROR MESSAGE ------>8--' >&2
}

fail() {
    error_message "$*"
    exit 1
}

exec_and_log() {
    _msg=$1
    shift
    _err=$(mktemp "${TMPDIR:-/tmp}/cloudgate-err.XXXXXX")
    _rc=0
    # The command's output is log, not the script's answer.
    "$@" >&2 2>"$_err" || _rc=$?
    if [ "$_rc" -ne 0 ]; then
        _last=$(sed '/^[[:space:]]*$/d' "$_err" | tail -n 3 | tr '\n' ' ')
        cat "$_err" >&2
        rm -f "$_err"
        error_message "$_msg: ${_last:-exit status $_rc}"
        exit "$_rc"
    fi
    cat "$_err" >&2
    rm -f "$_err"
}

arg_host() {
    printf '%s\n' "${1%%:*}"
}

arg_path() {
    printf '%s\n' "${1#*:}"
}

q() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

is_front_end() {
    [ "$1" = "${CLOUDGATE_FRONT_END:-$(uname -n)}" ]
}

on() {
    _host=$1
    shift
    if is_front_end "$_host"; then
        sh -c "$*"
    else
        $SSH "$_host" "$*"
    fi
}
