"""Frame schemas: every frame that crosses a module boundary, declared once.

Bump SCHEMA_VERSION whenever a schema (or the way a column is computed) changes:
it is part of the cache key, so old cached frames are never read back.
"""

import polars as pl

SCHEMA_VERSION = 1

SDP_MEDIA = pl.Struct(
    {
        "media": pl.Utf8,  # m= media type: audio, video, image, application
        "port": pl.UInt16,  # m= port (0 = stream rejected/disabled)
        "proto": pl.Utf8,  # m= transport: RTP/AVP, RTP/SAVP, udptl ...
        "payload_types": pl.List(pl.UInt8),  # m= formats that are numbers, in order
        "rtpmap": pl.List(pl.Utf8),  # a=rtpmap values, e.g. "0 PCMU/8000"
        "direction": pl.Utf8,  # sendrecv/sendonly/recvonly/inactive (media, else session, else sendrecv)
        "connection": pl.Utf8,  # c= address for this m= line (media level, else session level)
        "rtcp_port": pl.UInt16,  # a=rtcp port, else null (RTCP then on port + 1)
        "rtcp_mux": pl.Boolean,  # a=rtcp-mux present
        "ptime_ms": pl.UInt16,  # a=ptime, else null
    }
)

LEG_HEADER = pl.Struct({"name": pl.Utf8, "value": pl.Utf8})

# One row per SIP message (several messages in one TCP segment are several rows;
# a message spread over several segments is one row).
SIP_MESSAGES = pl.Schema(
    {
        "frame": pl.UInt32,  # frame number (1-based, original capture) where the message completes
        "frames": pl.List(pl.UInt32),  # every frame carrying bytes of it (TCP segments, IP fragments)
        "msg_index": pl.UInt16,  # position of the message inside its frame (0 = first)
        "ts_ns": pl.Int64,  # capture time of `frame`, nanoseconds since the Unix epoch, UTC
        "src_ip": pl.Utf8,
        "dst_ip": pl.Utf8,
        "src_port": pl.UInt16,
        "dst_port": pl.UInt16,
        "transport": pl.Utf8,  # udp, tcp, sctp, ws, tls
        "is_request": pl.Boolean,
        "method": pl.Utf8,  # request method; null for responses
        "status_code": pl.UInt16,  # response status; null for requests
        "reason": pl.Utf8,  # response reason phrase
        "request_uri": pl.Utf8,
        "call_id": pl.Utf8,
        "cseq_num": pl.UInt32,
        "cseq_method": pl.Utf8,
        "from_uri": pl.Utf8,
        "from_user": pl.Utf8,
        "from_display": pl.Utf8,
        "from_tag": pl.Utf8,
        "to_uri": pl.Utf8,
        "to_user": pl.Utf8,
        "to_display": pl.Utf8,
        "to_tag": pl.Utf8,
        "via_sent_by": pl.List(pl.Utf8),  # Via values in wire order (top first): host[:port]
        "via_branches": pl.List(pl.Utf8),  # branch parameter of each Via value, same order
        "contact": pl.Utf8,  # first Contact URI
        "route": pl.List(pl.Utf8),  # Route URIs in wire order
        "record_route": pl.List(pl.Utf8),  # Record-Route URIs in wire order
        "max_forwards": pl.Int16,
        "user_agent": pl.Utf8,
        "server": pl.Utf8,
        "content_type": pl.Utf8,
        "leg_headers": pl.List(LEG_HEADER),  # configured leg-link headers (X-CID, Session-ID...) present
        "reason_header": pl.Utf8,  # Reason header (RFC 3326)
        "warning": pl.Utf8,  # Warning header
        "has_sdp": pl.Boolean,
        "sdp_connection": pl.Utf8,  # session-level c= address
        "sdp_media": pl.List(SDP_MEDIA),  # one entry per m= line
        "icmp_quoted": pl.Boolean,  # the message is quoted inside an ICMP error, not delivered
        "raw": pl.Utf8,  # the message text as on the wire (UTF-8, invalid bytes replaced)
    }
)

# One row per RTP packet, decoded from the fixed header.
RTP_PACKETS = pl.Schema(
    {
        "frame": pl.UInt32,
        "ts_ns": pl.Int64,
        "src_ip": pl.Utf8,
        "dst_ip": pl.Utf8,
        "src_port": pl.UInt16,
        "dst_port": pl.UInt16,
        "ssrc": pl.UInt32,
        "seq": pl.UInt16,
        "rtp_ts": pl.UInt32,  # RTP timestamp (clock-rate units)
        "payload_type": pl.UInt8,
        "marker": pl.Boolean,
        "payload_len": pl.UInt16,  # bytes after the header, CSRCs, extension and padding
    }
)

# One row per RTCP SR/RR report block; an SR or RR without blocks gives one row with null block fields.
RTCP_REPORTS = pl.Schema(
    {
        "frame": pl.UInt32,
        "ts_ns": pl.Int64,
        "src_ip": pl.Utf8,
        "dst_ip": pl.Utf8,
        "src_port": pl.UInt16,
        "dst_port": pl.UInt16,
        "packet_type": pl.Utf8,  # "SR" or "RR"
        "sender_ssrc": pl.UInt32,  # SSRC of the reporter
        "ntp_ts": pl.Float64,  # SR: NTP timestamp, seconds since 1900
        "sr_rtp_ts": pl.UInt32,  # SR: RTP timestamp
        "sr_packet_count": pl.UInt32,
        "sr_octet_count": pl.UInt32,
        "source_ssrc": pl.UInt32,  # report block: SSRC reported on
        "fraction_lost": pl.UInt8,  # report block: fraction lost, in 1/256
        "cumulative_lost": pl.Int32,  # report block: cumulative packets lost (signed 24-bit)
        "highest_seq": pl.UInt32,  # report block: extended highest sequence number
        "jitter": pl.UInt32,  # report block: interarrival jitter, timestamp units
        "lsr": pl.UInt32,  # report block: middle 32 bits of the last SR's NTP time
        "dlsr": pl.UInt32,  # report block: delay since last SR, 1/65536 s
    }
)

ALL = {"sip_messages": SIP_MESSAGES, "rtp_packets": RTP_PACKETS, "rtcp_reports": RTCP_REPORTS}


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)
