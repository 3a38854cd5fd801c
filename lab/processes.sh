# flowviz lab: the process handling the lab scripts share (sourced, not run). The sourcing script sets
# LAB_TAG (the log prefix) first; it adds the PIDs it starts to PIDS and may set WORK (a scratch folder).
# Every process is stopped by PID on exit, failure or Ctrl-C, in reverse order; WORK is removed on success
# and kept, with a note, on failure.

log() { printf '[%s] %s\n' "${LAB_TAG:-lab}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PIDS=()
WORK=""

stop_pid() {     # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then KILL
	local pid=$1 sig=${2:-TERM} i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill "-$sig" "$pid" 2>/dev/null || true
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i=${#PIDS[@]}-1; i>=0; i--)); do stop_pid "${PIDS[i]}"; done
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $rc -ne 0 ]]; then log "logs of the failed run kept in $WORK"; else rm -rf "$WORK"; fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

listening() {    # listening PROTO ADDR:PORT PID: until a socket is bound there (PROTO u or t; max 10 s)
	local i
	for i in $(seq 100); do
		ss -Hln"$1" 2>/dev/null | awk '{print $4}' | grep -qx "$2" && return 0
		kill -0 "$3" 2>/dev/null || die "PID $3 exited before binding $2"
		sleep 0.1
	done
	die "nothing bound to $2 after 10 s"
}

end_capture() {  # end_capture UAS_PID CAPTURE: the UAS done, tcpdump stopped, nothing dropped, no ICMP in CAPTURE
	local i rc=0 icmp
	for i in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	wait "$1" || rc=$?
	[[ $rc -eq 0 ]] || die "sipp UAS failed (exit $rc), see $WORK/uas.log"
	sleep 1
	stop_pid "$TCPDUMP_PID" INT
	grep -q "^0 packets dropped by kernel" "$WORK/tcpdump.log" || die "tcpdump dropped packets"
	icmp=$(tcpdump -n -r "$2" icmp 2>/dev/null | wc -l)
	[[ $icmp -eq 0 ]] || die "$icmp ICMP packets in the capture"
}
