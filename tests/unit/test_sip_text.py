"""The SIP text parser on messages written here by hand, each exercising one rule of RFC 3261 7.3."""

from flowviz.ingest.sip_text import parse_message, parse_sdp, split_commas

# Folded header lines, compact names (v, f, t, i, m, l, c), three Via values in two header lines
# (the second one comma-separated, as sipp writes them), quoted display name with a comma.
MESSAGE = (
    "SIP/2.0 180 Ringing\r\n"
    "v: SIP/2.0/UDP 127.0.0.12;branch=z9hG4bK-p2\r\n"
    "Via: SIP/2.0/UDP 127.0.0.11;branch=z9hG4bK-p1 , SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-ua1;rport\r\n"
    'f: "Doe, John" <sip:alice@example.com>;tag=from1\r\n'
    "t: <sip:+15551234@example.com;user=phone>\r\n"
    " ;tag=to1\r\n"
    "i: abc123@host\r\n"
    "CSeq: 7 INVITE\r\n"
    "m: <sip:bob@10.0.0.2:5062>;expires=60\r\n"
    "Record-Route: <sip:127.0.0.12;lr>, <sip:127.0.0.11;lr>\r\n"
    "X-CID: leg-a-42\r\n"
    "Reason: Q.850;cause=16\r\n"
    "Server: test-uas/1.0\r\n"
    "c: application/sdp\r\n"
    "l: 0\r\n"
    "\r\n"
)


def test_start_line_and_identity():
    row = parse_message(MESSAGE)
    assert (row["is_request"], row["status_code"], row["reason"], row["method"]) == (False, 180, "Ringing", None)
    assert row["call_id"] == "abc123@host"
    assert (row["cseq_num"], row["cseq_method"]) == (7, "INVITE")


def test_via_values_not_header_lines():
    row = parse_message(MESSAGE)
    assert row["via_sent_by"] == ["127.0.0.12", "127.0.0.11", "127.0.0.10:5060"]
    assert row["via_branches"] == ["z9hG4bK-p2", "z9hG4bK-p1", "z9hG4bK-ua1"]


def test_name_addr_with_comma_in_display_and_folded_tag():
    row = parse_message(MESSAGE)
    assert (row["from_display"], row["from_uri"], row["from_user"], row["from_tag"]) == (
        "Doe, John", "sip:alice@example.com", "alice", "from1")
    assert (row["to_uri"], row["to_user"], row["to_tag"]) == ("sip:+15551234@example.com;user=phone", "+15551234", "to1")
    assert row["contact"] == "sip:bob@10.0.0.2:5062"
    assert row["record_route"] == ["sip:127.0.0.12;lr", "sip:127.0.0.11;lr"]


def test_leg_headers_and_others():
    row = parse_message(MESSAGE, leg_headers=("X-CID", "Session-ID"))
    assert row["leg_headers"] == [{"name": "X-CID", "value": "leg-a-42"}]
    assert row["reason_header"] == "Q.850;cause=16"
    assert row["server"] == "test-uas/1.0"
    assert row["has_sdp"] is False  # SDP content type but an empty body


def test_request_with_addr_spec_and_sdp():
    sdp = ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
           "m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
           "a=ptime:20\r\na=sendonly\r\na=rtcp:49200\r\n"
           "m=video 0 RTP/AVP 31\r\nc=IN IP4 198.51.100.7\r\n")
    text = ("INVITE tel:+4930123 SIP/2.0\r\nFrom: sip:carol@example.org;tag=99\r\nTo: tel:+4930123\r\n"
            "Call-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
    row = parse_message(text)
    assert (row["method"], row["request_uri"], row["max_forwards"]) == ("INVITE", "tel:+4930123", 69)
    assert (row["from_uri"], row["from_tag"], row["to_user"]) == ("sip:carol@example.org", "99", "+4930123")
    assert row["has_sdp"] and row["sdp_connection"] == "192.0.2.1"
    audio, video = row["sdp_media"]
    assert (audio["port"], audio["payload_types"], audio["direction"], audio["ptime_ms"], audio["rtcp_port"]) == (
        49170, [0, 8, 101], "sendonly", 20, 49200)
    assert audio["rtpmap"] == ["0 PCMU/8000", "101 telephone-event/8000"]
    assert (video["port"], video["connection"], video["direction"]) == (0, "198.51.100.7", "sendrecv")


def test_multipart_body_finds_the_sdp():
    body = ("--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 4000 RTP/AVP 9\r\n"
            "--b1\r\nContent-Type: application/isup\r\n\r\nxx\r\n--b1--\r\n")
    text = ("INVITE sip:b@x SIP/2.0\r\nCall-ID: m\r\nCSeq: 2 INVITE\r\n"
            'Content-Type: multipart/mixed;boundary="b1"\r\n\r\n' + body)
    row = parse_message(text)
    assert row["has_sdp"] and row["sdp_media"][0]["connection"] == "2001:db8::1"


def test_split_commas_keeps_quoted_and_bracketed_commas():
    assert split_commas('"a, b" <sip:x@y;p=1,2>, <sip:z@w>') == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]


def test_sdp_without_media():
    assert parse_sdp("v=0\r\nc=IN IP4 10.0.0.1\r\n") == ("10.0.0.1", [])
