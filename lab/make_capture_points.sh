#!/usr/bin/env bash
# flowviz lab: the reference call as seen at several capture points (docs/capture-sets.md).
#
# The lab's reference call (sample_pcaps/lab/reference_call.pcap) was captured once on lo, where every
# lab host lives. A tap at one host sees what a per-address filter on lo gives: its own links. Each point
# below is such a filter of the one capture; some are then shifted by a known clock offset (editcap -t)
# and one loses a packet, so that what flowviz must find is known from how the files were made:
#
#   p1.pcap          host P1  (links L1 UA1-P1, L2 P1-P2)           clock as the reference
#   p2_plus250ms.pcap  host P2  (links L2, L3 P2-UA2)               clock +0.250 s
#   ua2_minus120ms.pcap host UA2 (link L3 and the RTP)              clock -0.120 s
#   ua1.pcap         host UA1 (link L1 and the RTP)                 clock as the reference
#   p2_lost_invite.pcap  as p2_plus250ms.pcap without the INVITE P1 -> P2 (frame 3 of the reference):
#                    it left P1 and never reached P2
#
# Usage (from the repository root; needs tshark and editcap, no root): bash lab/make_capture_points.sh
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO_DIR/sample_pcaps/lab/reference_call.pcap"
OUT="$REPO_DIR/sample_pcaps/points"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

point() {  # point NAME ADDRESS SHIFT_SECONDS
	tshark -r "$SRC" -Y "ip.addr==$2" -w "$WORK/$1.pcap" -F pcap 2>/dev/null
	editcap -F pcap -t "$3" "$WORK/$1.pcap" "$OUT/$1.pcap"
}
point p1 127.0.0.11 0
point p2_plus250ms 127.0.0.12 0.25
point ua2_minus120ms 127.0.0.13 -0.12
point ua1 127.0.0.10 0
# the INVITE P1 -> P2 is the first packet of p2's view (frame 3 of the reference is its first packet)
first=$(tshark -r "$OUT/p2_plus250ms.pcap" -Y 'sip.Method=="INVITE" && ip.src==127.0.0.11' -T fields -e frame.number 2>/dev/null | head -1)
editcap -F pcap "$OUT/p2_plus250ms.pcap" "$OUT/p2_lost_invite.pcap" "$first"
# What each file is, from the lines above (not read back from the files).
cat > "$OUT/expected.json" <<'JSON'
{
 "about": "Written by lab/make_capture_points.sh from how it cuts sample_pcaps/lab/reference_call.pcap (per-address filters of the one capture on lo, then editcap -t); not read back from the files.",
 "source": "../lab/reference_call.pcap",
 "points": {
  "p1.pcap": {"host": "127.0.0.11", "links": ["L1", "L2"], "offset_s": 0.0},
  "p2_plus250ms.pcap": {"host": "127.0.0.12", "links": ["L2", "L3"], "offset_s": 0.25},
  "ua2_minus120ms.pcap": {"host": "127.0.0.13", "links": ["L3", "RTP"], "offset_s": -0.12},
  "ua1.pcap": {"host": "127.0.0.10", "links": ["L1", "RTP"], "offset_s": 0.0},
  "p2_lost_invite.pcap": {"host": "127.0.0.12", "links": ["L2", "L3"], "offset_s": 0.25,
                          "removed": {"reference_frame": 3, "what": "INVITE 127.0.0.11:5060 -> 127.0.0.12:5060"}}
 }
}
JSON
ls -l "$OUT"
