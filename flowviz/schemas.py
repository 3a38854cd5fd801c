"""Frame schemas: every frame that crosses a module boundary, declared once.

Bump SCHEMA_VERSION whenever a schema (or the way a column is computed) changes:
it is part of the cache key, so old cached frames are never read back.
"""

import json

import polars as pl

SCHEMA_VERSION = 3

SDP_MEDIA_COLUMNS = [
    ("media", pl.Utf8, "m= media type: audio, video, image, application"),
    ("port", pl.UInt16, "m= port (0 = stream rejected/disabled)"),
    ("proto", pl.Utf8, "m= transport: RTP/AVP, RTP/SAVP, udptl ..."),
    ("payload_types", pl.List(pl.UInt8), "m= formats that are numbers, in order"),
    ("rtpmap", pl.List(pl.Utf8), "a=rtpmap values, e.g. \"0 PCMU/8000\""),
    ("direction", pl.Utf8, "sendrecv/sendonly/recvonly/inactive (media, else session, else sendrecv)"),
    ("connection", pl.Utf8, "c= address for this m= line (media level, else session level)"),
    ("rtcp_port", pl.UInt16, "a=rtcp port, else null (RTCP then on port + 1)"),
    ("rtcp_mux", pl.Boolean, "a=rtcp-mux present"),
    ("ptime_ms", pl.UInt16, "a=ptime, else null"),
]
SDP_MEDIA = pl.Struct({name: dtype for name, dtype, _ in SDP_MEDIA_COLUMNS})

LEG_HEADER = pl.Struct({"name": pl.Utf8, "value": pl.Utf8})

# One row per SIP message (several messages in one TCP segment are several rows;
# a message spread over several segments is one row).
SIP_MESSAGES_COLUMNS = [
    ("frame", pl.UInt32, "frame number (1-based, original capture) where the message completes"),
    ("frames", pl.List(pl.UInt32), "every frame carrying bytes of it (TCP segments, IP fragments)"),
    ("msg_index", pl.UInt16, "position of the message inside its frame (0 = first)"),
    ("ts_ns", pl.Int64, "capture time of `frame`, nanoseconds since the Unix epoch, UTC"),
    ("src_ip", pl.Utf8, "source address (innermost IP header when tunnelled), text form"),
    ("dst_ip", pl.Utf8, "destination address (innermost IP header when tunnelled), text form"),
    ("src_port", pl.UInt16, "source UDP/TCP/SCTP port"),
    ("dst_port", pl.UInt16, "destination UDP/TCP/SCTP port"),
    ("transport", pl.Utf8, "udp, tcp, sctp, ws, wss, tls"),
    ("is_request", pl.Boolean, "true for a request, false for a response"),
    ("method", pl.Utf8, "request method; null for responses"),
    ("status_code", pl.UInt16, "response status; null for requests"),
    ("reason", pl.Utf8, "response reason phrase"),
    ("request_uri", pl.Utf8, "Request-URI of a request"),
    ("call_id", pl.Utf8, "Call-ID header (compact form i: understood)"),
    ("cseq_num", pl.UInt32, "CSeq sequence number"),
    ("cseq_method", pl.Utf8, "CSeq method"),
    ("from_uri", pl.Utf8, "From URI"),
    ("from_user", pl.Utf8, "user part of the From URI (tel: number for tel URIs)"),
    ("from_display", pl.Utf8, "From display name, without quotes"),
    ("from_tag", pl.Utf8, "From tag parameter"),
    ("to_uri", pl.Utf8, "To URI"),
    ("to_user", pl.Utf8, "user part of the To URI"),
    ("to_display", pl.Utf8, "To display name"),
    ("to_tag", pl.Utf8, "To tag parameter"),
    ("via_sent_by", pl.List(pl.Utf8), "Via values in wire order (top first): host[:port]"),
    ("via_branches", pl.List(pl.Utf8), "branch parameter of each Via value, same order"),
    ("contact", pl.Utf8, "first Contact URI"),
    ("route", pl.List(pl.Utf8), "Route URIs in wire order"),
    ("record_route", pl.List(pl.Utf8), "Record-Route URIs in wire order"),
    ("max_forwards", pl.Int16, "Max-Forwards value"),
    ("user_agent", pl.Utf8, "User-Agent header"),
    ("server", pl.Utf8, "Server header"),
    ("content_type", pl.Utf8, "Content-Type header"),
    ("leg_headers", pl.List(LEG_HEADER), "configured leg-link headers (X-CID, Session-ID...) present"),
    ("reason_header", pl.Utf8, "Reason header (RFC 3326)"),
    ("warning", pl.Utf8, "Warning header"),
    ("has_sdp", pl.Boolean, "the body is (or contains, in multipart) an SDP"),
    ("sdp_connection", pl.Utf8, "session-level c= address"),
    ("sdp_media", pl.List(SDP_MEDIA), "one entry per m= line"),
    ("icmp_quoted", pl.Boolean, "the message is quoted inside an ICMP error, not delivered"),
    ("capture_agent", pl.UInt32, "HEP capture agent id, the point of observation that sent the message "
                                 "encapsulated (null when it was captured directly)"),
    ("hep_correlation_id", pl.Utf8, "HEP correlation id chunk, as the capture agent sent it"),
    ("raw", pl.Utf8, "the message text as on the wire (UTF-8, invalid bytes replaced)"),
]
SIP_MESSAGES = pl.Schema({name: dtype for name, dtype, _ in SIP_MESSAGES_COLUMNS})

# Where and when a packet was seen: the first columns of every per-packet frame.
PACKET_COLUMNS = [
    ("frame", pl.UInt32, "frame number (1-based) in the capture"),
    ("ts_ns", pl.Int64, "capture time, ns since the Unix epoch, UTC"),
    ("src_ip", pl.Utf8, "source address (innermost IP header when tunnelled), text form"),
    ("dst_ip", pl.Utf8, "destination address (innermost IP header when tunnelled), text form"),
    ("src_port", pl.UInt16, "source UDP/TCP/SCTP port"),
    ("dst_port", pl.UInt16, "destination UDP/TCP/SCTP port"),
]

# One row per RTP packet, decoded from the fixed header.
RTP_PACKETS_COLUMNS = [
    *PACKET_COLUMNS,
    ("ssrc", pl.UInt32, "synchronization source identifier"),
    ("seq", pl.UInt16, "RTP sequence number"),
    ("rtp_ts", pl.UInt32, "RTP timestamp (clock-rate units)"),
    ("payload_type", pl.UInt8, "RTP payload type (0-127)"),
    ("marker", pl.Boolean, "marker bit"),
    ("payload_len", pl.UInt16, "bytes after the header, CSRCs, extension and padding"),
]
RTP_PACKETS = pl.Schema({name: dtype for name, dtype, _ in RTP_PACKETS_COLUMNS})

# One row per RTCP SR/RR report block; an SR or RR without blocks gives one row with null block fields.
RTCP_REPORTS_COLUMNS = [
    *PACKET_COLUMNS,
    ("packet_type", pl.Utf8, "\"SR\" or \"RR\""),
    ("sender_ssrc", pl.UInt32, "SSRC of the reporter"),
    ("ntp_ts", pl.Float64, "SR: NTP timestamp, seconds since 1900"),
    ("sr_rtp_ts", pl.UInt32, "SR: RTP timestamp"),
    ("sr_packet_count", pl.UInt32, "SR: sender's packet count"),
    ("sr_octet_count", pl.UInt32, "SR: sender's octet count"),
    ("source_ssrc", pl.UInt32, "report block: SSRC reported on"),
    ("fraction_lost", pl.UInt8, "report block: fraction lost, in 1/256"),
    ("cumulative_lost", pl.Int32, "report block: cumulative packets lost (signed 24-bit)"),
    ("highest_seq", pl.UInt32, "report block: extended highest sequence number"),
    ("jitter", pl.UInt32, "report block: interarrival jitter, timestamp units"),
    ("lsr", pl.UInt32, "report block: middle 32 bits of the last SR's NTP time"),
    ("dlsr", pl.UInt32, "report block: delay since last SR, 1/65536 s"),
]
RTCP_REPORTS = pl.Schema({name: dtype for name, dtype, _ in RTCP_REPORTS_COLUMNS})

# One row per RTCP XR VoIP Metrics report block (RFC 3611 section 4.7): what the endpoint itself measured.
RTCP_XR_COLUMNS = [
    *PACKET_COLUMNS,
    ("sender_ssrc", pl.UInt32, "SSRC of the reporter"),
    ("source_ssrc", pl.UInt32, "SSRC of the stream the metrics are about"),
    ("loss_rate_pct", pl.Float64, "packets lost in the network, percent (loss rate / 256)"),
    ("discard_rate_pct", pl.Float64, "packets discarded by the jitter buffer, percent (discard rate / 256)"),
    ("round_trip_ms", pl.UInt16, "round-trip delay the endpoint measured, ms"),
    ("end_system_delay_ms", pl.UInt16, "delay inside the endpoint, ms"),
    ("r_factor", pl.UInt8, "R factor the endpoint computed (null when it says unavailable, 127)"),
    ("mos_lq", pl.Float64, "MOS listening quality the endpoint computed (null when unavailable)"),
    ("mos_cq", pl.Float64, "MOS conversational quality the endpoint computed (null when unavailable)"),
    ("jb_nominal_ms", pl.UInt16, "jitter buffer nominal delay, ms"),
]
RTCP_XR = pl.Schema({name: dtype for name, dtype, _ in RTCP_XR_COLUMNS})

ALL = {"sip_messages": SIP_MESSAGES, "rtp_packets": RTP_PACKETS, "rtcp_reports": RTCP_REPORTS, "rtcp_xr": RTCP_XR}
DOCUMENTED = {
    "sip_messages": ("One row per SIP message (several messages in one TCP segment are several rows; a message "
                     "spread over several segments is one row).", SIP_MESSAGES_COLUMNS),
    "sdp_media (struct in sip_messages.sdp_media)": ("One entry per m= line of the SDP body.", SDP_MEDIA_COLUMNS),
    "rtp_packets": ("One row per RTP packet, from the fixed header (RFC 3550 5.1).", RTP_PACKETS_COLUMNS),
    "rtcp_reports": ("One row per RTCP SR/RR report block (RFC 3550 6.4); an SR or RR without blocks gives one row "
                     "with null block fields.", RTCP_REPORTS_COLUMNS),
    "rtcp_xr": ("One row per RTCP XR VoIP Metrics block (RFC 3611 4.7): the endpoint's own measurements.",
                RTCP_XR_COLUMNS),
}


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def from_rows(rows: list[dict], schema: pl.Schema) -> pl.DataFrame:
    """A frame of `schema` from dict rows (missing keys are null, other keys ignored).

    Built column by column, each nested column as one JSON array decoded by polars and exploded
    into rows: polars' conversion of nested Python lists is slow (2,100 SIP messages: 0.08 s,
    against 0.03 s this way; docs/architecture.md section 7).
    """
    if not rows:
        return empty(schema)
    columns = []
    for name, dtype in schema.items():
        values = [row.get(name) for row in rows]
        if dtype.is_nested():
            text = pl.Series(name, [json.dumps(values)], dtype=pl.Utf8)
            columns.append(text.str.json_decode(pl.List(_json_dtype(dtype))).explode().cast(dtype))
        else:
            columns.append(pl.Series(name, values, dtype=dtype))
    return pl.DataFrame(columns)


def _json_dtype(dtype: pl.DataType) -> pl.DataType:
    """`dtype` with 8- and 16-bit integers widened: polars' JSON decoder rejects them."""
    if dtype in (pl.UInt8, pl.UInt16):
        return pl.UInt32
    if dtype in (pl.Int8, pl.Int16):
        return pl.Int32
    if isinstance(dtype, pl.List):
        return pl.List(_json_dtype(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _json_dtype(f.dtype) for f in dtype.fields})
    return dtype


def markdown() -> str:
    """docs/schemas.md, generated from the declarations above (`flowviz schemas`)."""
    lines = ["# Frame schemas", "",
             f"Generated by `flowviz schemas > docs/schemas.md` (schema version {SCHEMA_VERSION}).",
             "Times are nanoseconds since the Unix epoch, UTC; frame numbers are 1-based, as in Wireshark.", ""]
    for title, (about, columns) in DOCUMENTED.items():
        lines += [f"## {title}", "", about, "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | {dtype} | {text} |" for name, dtype, text in columns]
        lines.append("")
    return "\n".join(lines)
