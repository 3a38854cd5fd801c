#!/usr/bin/env bash
# flowviz lab, TLS: a SIP call over TLS made by real software, captured on lo with its key log.
#
#   UA1 lab/tls_uac.py (Python ssl, keylog_filename) 127.0.0.10 --TLS--> kamailio 127.0.0.11:5061 (lab/p_tls.cfg)
#       --UDP--> sipp UAS 127.0.0.13:5060 (lab/uas_call.xml: 100, 180, 200 with SDP, 10 s of PCMA RTP, BYE/200)
#
# Writes sample_pcaps/transports/tls/sip_tls_call.pcap and sip_tls_call.keys (NSS key log of the TLS session).
# Debian's sipp is built without TLS, hence the Python UAC. The proxy's certificate is the tests' self-signed
# tests/kit/tls_test_cert.pem.
# Usage (from the repository root, as root): bash lab/make_tls_capture.sh
# Installs kamailio, kamailio-tls-modules, sip-tester (sipp) and tcpdump with apt-get when missing. Every
# process it starts is stopped by PID, also on failure or Ctrl-C. Traffic only goes to 127.0.0.10-13 on lo.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAB_DIR/.." && pwd)"
OUT_DIR="$REPO_DIR/sample_pcaps/transports/tls"
CERT="$REPO_DIR/tests/kit/tls_test_cert.pem"
G711_PCAP=/usr/share/sip-tester/g711a.pcap
UA1=127.0.0.10 P1=127.0.0.11 UA2=127.0.0.13

LAB_TAG=lab-tls
# shellcheck source=lab/processes.sh
source "$LAB_DIR/processes.sh"

[[ $(id -u) -eq 0 ]] || die "run as root (tcpdump on lo, sipp's raw-socket RTP, apt-get)"
missing=()
command -v kamailio >/dev/null || missing+=(kamailio)
[[ -r /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ]] || missing+=(kamailio-tls-modules)
command -v sipp >/dev/null && [[ -r $G711_PCAP ]] || missing+=(sip-tester)
command -v tcpdump >/dev/null || missing+=(tcpdump)
if ((${#missing[@]})); then
	log "installing ${missing[*]} with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

WORK=$(mktemp -d /tmp/flowviz-lab-tls.XXXXXX)
mkdir -p "$OUT_DIR"
python3 "$LAB_DIR/derive_media.py" "$G711_PCAP" "$WORK"

tcpdump -i lo -n -U -s 0 -w "$WORK/call.pcap" "host $UA1 or host $P1 or host $UA2" >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
PIDS+=($TCPDUMP_PID)
for i in $(seq 100); do grep -q "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
sleep 0.5

mkdir -p "$WORK/run"
kamailio -f "$LAB_DIR/p_tls.cfg" -A "CERT=\"$CERT\"" -A "KEY=\"$CERT\"" -DD -E -m 32 -M 8 -Y "$WORK/run" -w "$WORK" \
	>"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
listening t "$P1:5061" "$!"

( cd "$WORK" && exec sipp -sf "$LAB_DIR/uas_call.xml" -i "$UA2" -p 5060 -mi "$UA2" -mp 20000 -m 1 -nostdin \
	-trace_err -error_file "$WORK/uas.err" >"$WORK/uas.log" 2>&1 ) &
uas_pid=$!
PIDS+=($uas_pid)
listening u "$UA2:5060" "$uas_pid"

rm -f "$WORK/keys.log"
rc=0; timeout 40 python3 "$LAB_DIR/tls_uac.py" "$WORK/keys.log" >"$WORK/uac.log" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || die "the TLS UAC failed (exit $rc): $(cat "$WORK/uac.log")"
end_capture "$uas_pid" "$WORK/call.pcap"

cp "$WORK/call.pcap" "$OUT_DIR/sip_tls_call.pcap"
cp "$WORK/keys.log" "$OUT_DIR/sip_tls_call.keys"
chmod 644 "$OUT_DIR"/sip_tls_call.*
chown --reference="$REPO_DIR/sample_pcaps" "$OUT_DIR" "$OUT_DIR"/sip_tls_call.*
log "wrote $OUT_DIR/sip_tls_call.pcap ($(tcpdump -n -r "$OUT_DIR/sip_tls_call.pcap" 2>/dev/null | wc -l) packets) and its key log"
log "$(kamailio -v | head -1); $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1); $(python3 -c 'import ssl; print(ssl.OPENSSL_VERSION)')"
