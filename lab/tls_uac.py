#!/usr/bin/env python3
"""A SIP user agent client over TLS for the lab's TLS capture (lab/make_tls_capture.sh).

sipp from Debian is built without TLS, so UA1 is this script: Python's ssl module, which writes the
session keys to the key log given (keylog_filename, NSS format). It calls UA2 (sipp, lab/uas_call.xml)
through the kamailio proxy (lab/p_tls.cfg): INVITE over TLS to 127.0.0.11:5061, waits for the 200,
sends the ACK and, after the UAS's 10 s of RTP, the BYE, both along the Record-Route set (RFC 3261
12.1.2, 12.2.1.1), on the same TLS connection. It binds the RTP port its SDP offers, so the UAS's RTP
finds a socket (no ICMP in the capture).

Usage: tls_uac.py KEYLOG   (prints the Call-ID; exit 0 when the call completed)
"""

from __future__ import annotations

import re
import socket
import ssl
import sys
import threading
import time

UA1, UA2, PROXY = "127.0.0.10", "127.0.0.13", ("127.0.0.11", 5061)
RTP_PORT = 16000
CALL_ID = "lab-tls-1@127.0.0.10"


def read_message(conn: ssl.SSLSocket, buf: bytearray) -> str:
    """The next SIP message on the stream (framed by Content-Length, RFC 3261 18.3)."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int(m.group(1)) if (m := re.search(r"(?im)^content-length:\s*(\d+)", head)) else 0
            if len(buf) >= end + 4 + length:
                text = buf[: end + 4 + length].decode()
                del buf[: end + 4 + length]
                return text
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("the proxy closed the connection")
        buf += data


def header(text: str, name: str) -> list[str]:
    return re.findall(rf"(?im)^{name}:\s*(.*?)\r?$", text)


def main(keylog: str) -> int:
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((UA1, RTP_PORT))
    rtp.settimeout(0.5)
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            try:
                rtp.recv(2048)
            except OSError:
                pass

    threading.Thread(target=drain, daemon=True).start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.keylog_filename = keylog
    raw = socket.create_connection(PROXY, timeout=30, source_address=(UA1, 0))
    conn = ctx.wrap_socket(raw, server_hostname="sip.example.test")
    port = conn.getsockname()[1]
    via = f"SIP/2.0/TLS {UA1}:{port};branch=z9hG4bK-lab-tls-{{n}};rport"
    sdp = (f"v=0\r\no=ua1 1 1 IN IP4 {UA1}\r\ns=flowviz lab\r\nc=IN IP4 {UA1}\r\nt=0 0\r\n"
           f"m=audio {RTP_PORT} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:30\r\na=sendrecv\r\n")
    common = (f"From: \"UA1\" <sip:ua1@{UA1}>;tag=ua1-tls\r\nCall-ID: {CALL_ID}\r\nMax-Forwards: 70\r\n"
              f"Contact: <sip:ua1@{UA1}:{port};transport=tls>\r\nUser-Agent: flowviz lab tls_uac.py\r\n")
    invite = (f"INVITE sip:ua2@{UA2}:5060 SIP/2.0\r\nVia: {via.format(n=1)}\r\n{common}"
              f"To: \"UA2\" <sip:ua2@{UA2}:5060>\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
              f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
    conn.sendall(invite.encode())
    buf = bytearray()
    while True:
        reply = read_message(conn, buf)
        code = int(reply.split(" ", 2)[1])
        if code >= 200:
            break
    if code != 200:
        print(f"INVITE answered {code}", file=sys.stderr)
        return 1
    to = header(reply, "To")[0]
    target = re.search(r"<([^>]+)>", header(reply, "Contact")[0]).group(1)
    routes = [r for value in reversed(header(reply, "Record-Route")) for r in reversed(value.split(","))]
    route = "".join(f"Route: {r.strip()}\r\n" for r in routes)

    def in_dialog(method: str, cseq: int, n: int) -> str:
        return (f"{method} {target} SIP/2.0\r\nVia: {via.format(n=n)}\r\n{route}{common}To: {to}\r\n"
                f"CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n")

    conn.sendall(in_dialog("ACK", 1, 2).encode())
    time.sleep(10.5)  # the UAS plays 10 s of RTP after the ACK
    conn.sendall(in_dialog("BYE", 2, 3).encode())
    while True:
        reply = read_message(conn, buf)
        if "BYE" in header(reply, "CSeq")[0] and int(reply.split(" ", 2)[1]) >= 200:
            break
    try:
        conn.unwrap()  # close_notify; the proxy may close its side first
    except (ssl.SSLError, OSError):
        pass
    conn.close()
    stop.set()
    print(CALL_ID)
    return 0 if reply.startswith("SIP/2.0 200") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
