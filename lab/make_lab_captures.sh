#!/usr/bin/env bash
# flowviz lab: generate real SIP/RTP captures with two kamailio proxies and sipp.
#
#   UA1 sipp UAC 127.0.0.10:5060 -> P1 kamailio 127.0.0.11:5060
#       -> P2 kamailio 127.0.0.12:5060 -> UA2 sipp UAS 127.0.0.13:5060
#   RTP (PCMA) directly 127.0.0.10:16000 <-> 127.0.0.13:20000
#
# Usage (from the repository root, as root):
#     bash lab/make_lab_captures.sh            # all captures
#     bash lab/make_lab_captures.sh reference  # only some: reference busy cancel burst
#
# Writes sample_pcaps/lab/{reference_call,busy_486,cancel,burst_100}.pcap.
# Installs kamailio, sip-tester (sipp) and tcpdump with apt-get when missing.
# Every process it starts is stopped by PID, also on failure or Ctrl-C.
# Traffic only ever goes to 127.0.0.10-13 on the loopback interface.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAB_DIR/.." && pwd)"
OUT_DIR="$REPO_DIR/sample_pcaps/lab"
G711_PCAP=/usr/share/sip-tester/g711a.pcap

UA1=127.0.0.10 P1=127.0.0.11 P2=127.0.0.12 UA2=127.0.0.13
SIP_PORT=5060
UAC_MEDIA_PORT=16000
UAS_MEDIA_PORT=20000
# the burst mix; lab/expected_model.py states the same numbers (keep in step)
BURST_CALLS=100
BURST_RATE=10          # calls per second
BURST_BUSY_EVERY=10    # call n (1-based) gets 486 Busy Here when n % 10 == 0

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes
PIDS=()          # every process we started, stopped in reverse order
WORK=""

stop_pid() {     # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then KILL
	local pid=$1 sig=${2:-TERM} i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill "-$sig" "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "PID $pid did not stop on SIG$sig, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

forget_pid() {   # remove one PID from PIDS
	local pid=$1 p keep=()
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i=${#PIDS[@]}-1; i>=0; i--)); do
		stop_pid "${PIDS[i]}"
	done
	PIDS=()
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $rc -ne 0 ]]; then
			log "logs of the failed run kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup
need_packages() {
	local missing=()
	command -v kamailio >/dev/null || missing+=(kamailio)
	command -v sipp >/dev/null && [[ -r $G711_PCAP ]] || missing+=(sip-tester)
	command -v tcpdump >/dev/null || missing+=(tcpdump)
	command -v python3 >/dev/null || missing+=(python3)
	command -v ss >/dev/null || missing+=(iproute2)
	if ((${#missing[@]})); then
		[[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; run as root so apt-get can install them"
		log "installing ${missing[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	[[ $(id -u) -eq 0 ]] || die "run as root (tcpdump on lo and sipp's raw-socket RTP play need it)"
}

check_ports_free() {
	local busy
	busy=$(ss -Hlnu 2>/dev/null | awk '{print $4}' | grep -E "^127\.0\.0\.1[0-3]:" || true)
	[[ -z $busy ]] || die "something already listens on: $busy (stop it first)"
}

# wait_for_udp ADDR:PORT [PID]: until a UDP socket is bound there (max 10 s);
# gives up early when process PID has exited
wait_for_udp() {
	local i
	for i in $(seq 100); do
		ss -Hlnu 2>/dev/null | awk '{print $4}' | grep -qx "$1" && return 0
		[[ -z ${2:-} ]] || kill -0 "$2" 2>/dev/null || die "PID $2 exited before binding udp $1"
		sleep 0.1
	done
	die "nothing bound to udp $1 after 10 s"
}

start_proxies() {    # start_proxies NAME: P1 and P2, logs in $WORK/NAME.pN.log
	local name=$1 n cfg ip
	for n in 1 2; do
		cfg="$LAB_DIR/p$n.cfg"
		ip=$P1; [[ $n == 2 ]] && ip=$P2
		mkdir -p "$WORK/run.p$n"
		kamailio -f "$cfg" -DD -E -m 32 -M 4 -Y "$WORK/run.p$n" -w "$WORK" \
			>"$WORK/$name.p$n.log" 2>&1 &
		PIDS+=($!)
		eval "PROXY${n}_PID=$!"
	done
	wait_for_udp "$P1:$SIP_PORT" "$PROXY1_PID"
	wait_for_udp "$P2:$SIP_PORT" "$PROXY2_PID"
	sleep 0.3
	kill -0 "$PROXY1_PID" && kill -0 "$PROXY2_PID" || die "kamailio exited, see $WORK/$name.p*.log"
}

stop_proxies() {
	stop_pid "$PROXY2_PID"; forget_pid "$PROXY2_PID"
	stop_pid "$PROXY1_PID"; forget_pid "$PROXY1_PID"
}

start_capture() {    # start_capture FILE
	local file=$1 i
	rm -f "$file"
	tcpdump -i lo -n -U -s 0 -w "$file" \
		"host $UA1 or host $P1 or host $P2 or host $UA2" \
		>"$WORK/tcpdump.log" 2>&1 &
	TCPDUMP_PID=$!
	PIDS+=($TCPDUMP_PID)
	for i in $(seq 100); do
		grep -q "listening on" "$WORK/tcpdump.log" && break
		sleep 0.1
	done
	grep -q "listening on" "$WORK/tcpdump.log" || die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
	sleep 0.5
}

stop_capture() {
	sleep 1      # let the last packets (and any late retransmission) in
	stop_pid "$TCPDUMP_PID" INT
	forget_pid "$TCPDUMP_PID"
	grep -E "packets (captured|dropped by kernel)" "$WORK/tcpdump.log" | sed 's/^/[lab]   tcpdump: /' >&2 || true
	grep -q "^0 packets dropped by kernel" "$WORK/tcpdump.log" || die "tcpdump dropped packets"
}

# run_call NAME CID UAC_XML UAS_XML UAC_TIMEOUT [extra sipp UAC args...]
# Call-IDs are lab-CID-N@127.0.0.10 (N = sipp's call number, 1..).
# One sipp UAS and one sipp UAC through P1/P2, captured into OUT_DIR/NAME.pcap.
run_call() {
	local name=$1 cid=$2 uac_xml=$3 uas_xml=$4 timeout_s=$5
	shift 5
	local calls=1 pcap="$OUT_DIR/$name.pcap" tmp="$WORK/$name.pcap" uas_pid uac_pid rc i
	[[ ${1:-} == -m ]] && calls=$2
	log "== $name: $calls call(s), $(basename "$uac_xml") -> P1 -> P2 -> $(basename "$uas_xml")"
	start_proxies "$name"
	start_capture "$tmp"

	( cd "$WORK" && exec sipp -sf "$LAB_DIR/$uas_xml" -i "$UA2" -p "$SIP_PORT" \
		-mi "$UA2" -mp "$UAS_MEDIA_PORT" -m "$calls" -nostdin -trace_err \
		-error_file "$WORK/$name.uas.err" >"$WORK/$name.uas.log" 2>&1 ) &
	uas_pid=$!
	PIDS+=($uas_pid)
	wait_for_udp "$UA2:$SIP_PORT" "$uas_pid"

	# RTP sockets for the per-call ports sipp announces but does not bind
	# (sipp binds only -mp and -mp+2); without them lo answers RTP with ICMP
	local last=$(( 4 * (calls - 1) ))
	if (( calls > 1 )); then
		python3 "$LAB_DIR/rtp_sink.py" --max-seconds 600 \
			"$UA1:$((UAC_MEDIA_PORT + 4)):$((UAC_MEDIA_PORT + last)):4" \
			"$UA2:$((UAS_MEDIA_PORT + 4)):$((UAS_MEDIA_PORT + last)):4" \
			>"$WORK/$name.sink.log" 2>&1 &
		SINK_PID=$!
		PIDS+=($SINK_PID)
		for i in $(seq 100); do
			grep -q '^ready' "$WORK/$name.sink.log" && break
			kill -0 "$SINK_PID" 2>/dev/null || die "rtp_sink.py failed: $(cat "$WORK/$name.sink.log")"
			sleep 0.1
		done
	fi

	# in the background + wait, so that a signal to this script is handled at once
	( cd "$WORK" && exec timeout -s INT "$timeout_s" sipp -sf "$LAB_DIR/$uac_xml" \
		-i "$UA1" -p "$SIP_PORT" -mi "$UA1" -mp "$UAC_MEDIA_PORT" -nostdin \
		-trace_err -error_file "$WORK/$name.uac.err" -cid_str "lab-$cid-%u@%s" "$@" \
		"$P1:$SIP_PORT" >"$WORK/$name.uac.log" 2>&1 ) &
	uac_pid=$!
	PIDS+=($uac_pid)
	rc=0; wait "$uac_pid" || rc=$?
	forget_pid "$uac_pid"
	[[ $rc -eq 0 ]] || die "sipp UAC failed (exit $rc), see $WORK/$name.uac.log and $WORK/$name.uac.err"

	# the UAS ends by itself after its -m calls; give it the time of its last pause
	for i in $(seq 50); do kill -0 "$uas_pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$uas_pid" 2>/dev/null; then
		die "sipp UAS still running after the UAC finished, see $WORK/$name.uas.log"
	fi
	rc=0; wait "$uas_pid" || rc=$?
	forget_pid "$uas_pid"
	[[ $rc -eq 0 ]] || die "sipp UAS failed (exit $rc), see $WORK/$name.uas.log and $WORK/$name.uas.err"

	stop_capture
	if (( calls > 1 )); then
		stop_pid "$SINK_PID"; forget_pid "$SINK_PID"
		log "   rtp_sink: $(grep -c . "$WORK/$name.sink.log") lines, $(tail -1 "$WORK/$name.sink.log" | grep -o ':[ 0-9]*[,}]' | wc -l) ports received RTP"
	fi
	stop_proxies
	local icmp
	icmp=$(tcpdump -n -r "$tmp" icmp 2>/dev/null | wc -l)
	[[ $icmp -eq 0 ]] || die "$icmp ICMP packets in $tmp (RTP to a port nobody listens on?)"
	mv -f "$tmp" "$pcap"
	chown --reference="$OUT_DIR" "$pcap"   # tcpdump drops root and creates it as user tcpdump
	chmod 644 "$pcap"
	log "   wrote $pcap ($(stat -c %s "$pcap") bytes)"
}

# ---------------------------------------------------------------- main
main() {
	local what=("$@")
	((${#what[@]})) || what=(reference busy cancel burst)
	need_packages
	check_ports_free
	mkdir -p "$OUT_DIR"
	WORK=$(mktemp -d /tmp/flowviz-lab.XXXXXX)
	log "work dir $WORK; $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1); $(kamailio -v | head -1)"
	python3 "$LAB_DIR/derive_media.py" "$G711_PCAP" "$WORK"

	local w
	for w in "${what[@]}"; do
		case $w in
		reference) run_call reference_call ref uac_call.xml uas_call.xml 40 -m 1 ;;
		busy)      run_call busy_486 busy uac_busy.xml uas_busy.xml 20 -m 1 ;;
		cancel)    run_call cancel cancel uac_cancel.xml uas_cancel.xml 20 -m 1 ;;
		burst)
			# call n (1..100) is busy when n % BURST_BUSY_EVERY == 0
			{
				echo SEQUENTIAL
				for ((n = 1; n <= BURST_CALLS; n++)); do
					if ((n % BURST_BUSY_EVERY == 0)); then echo "$n;busy"; else echo "$n;answer"; fi
				done
			} >"$WORK/burst.csv"
			run_call burst_100 burst uac_burst.xml uas_burst.xml 120 -m "$BURST_CALLS" \
				-r "$BURST_RATE" -l 50 -inf "$WORK/burst.csv"
			;;
		*) die "unknown capture '$w' (reference busy cancel burst)" ;;
		esac
	done
	write_expected
	if command -v tshark >/dev/null; then
		log "verifying with tshark (lab/verify_lab_captures.py)"
		python3 "$LAB_DIR/verify_lab_captures.py" "$OUT_DIR" >&2 || die "captures do not match expected.json"
	else
		log "tshark not installed: skipped lab/verify_lab_captures.py"
	fi
	log "done"
}

# expected.json: facts from the construction (lab/expected_model.py), plus the versions used
write_expected() {
	local gen
	gen=$(python3 - "$BURST_CALLS" "$BURST_BUSY_EVERY" <<-'PY'
		import json, subprocess, sys
		def out(*cmd):
		    try:
		        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
		    except OSError:
		        return ""
		pkgs = dict(l.split("\t", 1) for l in out("dpkg-query", "-W", "-f", "${Package}\t${Version}\n",
		            "sip-tester", "kamailio", "tcpdump").splitlines() if "\t" in l)
		print(json.dumps({
		    "command": "bash lab/make_lab_captures.sh",
		    "sipp": (out("sipp", "-v").split() or ["?"])[1] if "SIPp" in out("sipp", "-v") else "?",
		    "kamailio": out("kamailio", "-v").splitlines()[0].replace("version: ", "").strip(),
		    "debian_packages": pkgs,
		    "burst": {"calls": int(sys.argv[1]), "busy_every": int(sys.argv[2])},
		}))
	PY
	)
	python3 "$LAB_DIR/expected_model.py" "$OUT_DIR/expected.json" "$gen"
	log "   wrote $OUT_DIR/expected.json"
}

main "$@"
