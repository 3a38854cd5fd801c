#!/usr/bin/env bash
# flowviz lab, HEP: the reference call of lab/make_lab_captures.sh (sipp UA1 -> kamailio P1 -> kamailio P2
# -> sipp UA2, RTP between the UAs) while both proxies mirror every SIP message they receive and send as
# HEPv3 (kamailio's siptrace module, trace_mode 1) to a collector on 127.0.0.1:9060, capture agent ids
# 11 (P1) and 12 (P2). One tcpdump on lo records everything; it is split into
#
#   sample_pcaps/transports/hep/hep_reference_call.pcap    only the HEP packets (udp port 9060)
#   sample_pcaps/transports/hep/plain_reference_call.pcap  the same call as it went on the wire (the rest)
#
# so the HEP capture can be checked against the plain one of the same run (tests/integration/test_hep_lab.py).
# Usage (from the repository root, as root): bash lab/make_hep_capture.sh
# Installs kamailio, sip-tester (sipp) and tcpdump with apt-get when missing. Every process it starts is
# stopped by PID, also on failure or Ctrl-C. Traffic only goes to 127.0.0.1 and 127.0.0.10-13 on lo.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAB_DIR/.." && pwd)"
OUT_DIR="$REPO_DIR/sample_pcaps/transports/hep"
G711_PCAP=/usr/share/sip-tester/g711a.pcap
UA1=127.0.0.10 P1=127.0.0.11 P2=127.0.0.12 UA2=127.0.0.13 COLLECTOR=127.0.0.1 HEP_PORT=9060

LAB_TAG=lab-hep
# shellcheck source=lab/processes.sh
source "$LAB_DIR/processes.sh"

[[ $(id -u) -eq 0 ]] || die "run as root (tcpdump on lo, apt-get)"
missing=()
command -v kamailio >/dev/null || missing+=(kamailio)
command -v sipp >/dev/null && [[ -r $G711_PCAP ]] || missing+=(sip-tester)
command -v tcpdump >/dev/null || missing+=(tcpdump)
if ((${#missing[@]})); then
	log "installing ${missing[*]} with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
busy=$(ss -Hlnu 2>/dev/null | awk '{print $4}' | grep -E "^127\.0\.0\.1[0-3]?:(5060|$HEP_PORT)$" || true)
[[ -z $busy ]] || die "something already listens on: $busy (stop it first)"

WORK=$(mktemp -d /tmp/flowviz-lab-hep.XXXXXX)
mkdir -p "$OUT_DIR"
python3 "$LAB_DIR/derive_media.py" "$G711_PCAP" "$WORK"

# the lab's proxy configs, with siptrace mirroring every message as HEPv3 (inserted after the last module)
for n in 1 2; do
	sed "/^loadmodule \"xlog.so\"/a\\
loadmodule \"siptrace.so\"\\
modparam(\"siptrace\", \"duplicate_uri\", \"sip:$COLLECTOR:$HEP_PORT\")\\
modparam(\"siptrace\", \"hep_mode_on\", 1)\\
modparam(\"siptrace\", \"hep_version\", 3)\\
modparam(\"siptrace\", \"hep_capture_id\", 1$n)\\
modparam(\"siptrace\", \"trace_to_database\", 0)\\
modparam(\"siptrace\", \"trace_on\", 1)\\
modparam(\"siptrace\", \"trace_mode\", 1)" "$LAB_DIR/p$n.cfg" >"$WORK/p$n.cfg"
	grep -q siptrace "$WORK/p$n.cfg" || die "could not add siptrace to lab/p$n.cfg"
done

# the collector: a socket that takes the HEP packets (else lo answers them with ICMP port unreachable)
python3 "$LAB_DIR/rtp_sink.py" --max-seconds 120 "$COLLECTOR:$HEP_PORT:$HEP_PORT:1" >"$WORK/collector.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do grep -q '^ready' "$WORK/collector.log" && break; sleep 0.1; done

tcpdump -i lo -n -U -s 0 -w "$WORK/all.pcap" "host $UA1 or host $P1 or host $P2 or host $UA2 or udp port $HEP_PORT" \
	>"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
PIDS+=($TCPDUMP_PID)
for i in $(seq 100); do grep -q "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
sleep 0.5

for n in 1 2; do
	mkdir -p "$WORK/run.p$n"
	kamailio -f "$WORK/p$n.cfg" -DD -E -m 32 -M 4 -Y "$WORK/run.p$n" -w "$WORK" >"$WORK/p$n.log" 2>&1 &
	PIDS+=($!)
	ip=$P1; [[ $n == 2 ]] && ip=$P2
	listening u "$ip:5060" "$!"
done
sleep 0.3

( cd "$WORK" && exec sipp -sf "$LAB_DIR/uas_call.xml" -i "$UA2" -p 5060 -mi "$UA2" -mp 20000 -m 1 -nostdin \
	-trace_err -error_file "$WORK/uas.err" >"$WORK/uas.log" 2>&1 ) &
uas_pid=$!
PIDS+=($uas_pid)
listening u "$UA2:5060" "$uas_pid"
( cd "$WORK" && exec timeout -s INT 40 sipp -sf "$LAB_DIR/uac_call.xml" -i "$UA1" -p 5060 -mi "$UA1" -mp 16000 \
	-nostdin -trace_err -error_file "$WORK/uac.err" -cid_str "lab-hep-%u@%s" -m 1 "$P1:5060" \
	>"$WORK/uac.log" 2>&1 ) &
uac_pid=$!
PIDS+=($uac_pid)
rc=0; wait "$uac_pid" || rc=$?
[[ $rc -eq 0 ]] || die "sipp UAC failed (exit $rc), see $WORK/uac.log"
end_capture "$uas_pid" "$WORK/all.pcap"
tcpdump -n -r "$WORK/all.pcap" -w "$OUT_DIR/hep_reference_call.pcap" "udp port $HEP_PORT" 2>/dev/null
tcpdump -n -r "$WORK/all.pcap" -w "$OUT_DIR/plain_reference_call.pcap" "not udp port $HEP_PORT" 2>/dev/null
chmod 644 "$OUT_DIR"/*.pcap
chown --reference="$REPO_DIR/sample_pcaps" "$OUT_DIR" "$OUT_DIR"/*.pcap
log "wrote $OUT_DIR/hep_reference_call.pcap ($(tcpdump -n -r "$OUT_DIR/hep_reference_call.pcap" 2>/dev/null | wc -l) packets)"
log "wrote $OUT_DIR/plain_reference_call.pcap ($(tcpdump -n -r "$OUT_DIR/plain_reference_call.pcap" 2>/dev/null | wc -l) packets)"
log "$(kamailio -v | head -1); $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
