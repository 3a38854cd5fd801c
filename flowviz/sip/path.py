"""Path of a call: the hosts its first request crossed, in order, with their roles and delays.

Each leg's initial request is followed from the caller down the hop tree (see hops.py); the
legs of a B2BUA follow each other, so the B2BUA sits where one leg ends and the next begins.
Per-hop delay: on each link, INVITE -> the first response from the next hop (the 100 Trying a
stateful hop sends at once, RFC 3261 16.2/17.2.1): it measures that hop only, never the call.
Forwarding: for each request and response a proxy passed on, forwarded time - received time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from flowviz.sip.hops import children_of, request_path


@dataclass
class PathFacts:
    hosts: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    hop_delays_ms: list[float | None] = field(default_factory=list)
    forwarding: list[dict] = field(default_factory=list)
    forks: list[dict] = field(default_factory=list)  # a proxy that sent one request to several next hops
    legs: list[dict] = field(default_factory=list)


@dataclass
class HopIndex:
    """The capture's hop edges, indexed once so each call only looks at its own."""

    children: dict[int, list[int]]
    forwarded: set[int]
    by_received: dict[int, list[dict]]  # message a proxy received -> its forwarding edges

    @classmethod
    def build(cls, req_hops: pl.DataFrame, resp_hops: pl.DataFrame,
              cancel_hops: pl.DataFrame | None = None) -> "HopIndex":
        by_received: dict[int, list[dict]] = {}
        columns = ["up_msg", "down_msg", "proxy", "forward_ns"]
        downstream = pl.concat([h.select(columns) for h in (req_hops, cancel_hops) if h is not None])
        for e in downstream.iter_rows(named=True):
            by_received.setdefault(e["up_msg"], []).append({**e, "out_msg": e["down_msg"]})
        for e in resp_hops.select("up_msg", "down_msg", "proxy", "forward_ns").iter_rows(named=True):
            by_received.setdefault(e["down_msg"], []).append({**e, "out_msg": e["up_msg"]})
        return cls(children_of(req_hops), set(req_hops["down_msg"].to_list()), by_received)


def path_facts(call_ids: list[str], rows: list[dict], by_id: dict, index: HopIndex,
               leg_links: pl.DataFrame, method: str, measured: dict | None = None) -> PathFacts:
    """Hosts of every leg's initial request(s) in order; `measured`: the first leg's try whose hop
    delays count (other legs: their first try). Hop delays run over all links, leg after leg.

    Every try of the initial request counts (a retry after 401/407 usually takes the same path,
    a retry after a 3xx goes to the new target), so a redirect shows where the call went.
    """
    facts = PathFacts()
    proxies: set[str] = set()
    b2buas: set[str] = set()
    previous_end: str | None = None
    for n, call_id in enumerate(call_ids):
        roots = [r for r in rows if r["call_id"] == call_id and r["is_request"] and r["method"] == method
                 and r["to_tag"] is None and not r["is_retransmission"] and r["msg_id"] not in index.forwarded]
        if not roots:
            roots = [next((r for r in rows if r["call_id"] == call_id and r["is_request"]), rows[0])]
        if n and previous_end is not None:
            b2buas.update({previous_end, roots[0]["src"]})
        timed = next((r for r in roots if measured and r["msg_id"] == measured["msg_id"]), roots[0])
        timed_ends: set[str] = set()  # IPs where the timed try (or its continuation) arrived
        ended: dict[str, str] = {}  # IP where a try arrived -> that host
        for root in roots:
            chain = [by_id[m] for m in request_path(root["msg_id"], index.children) if m in by_id]
            ip = _ip(root["src"])
            # Same request sent on from where an earlier copy arrived, without a Via link: a hop
            # that rewrote the Via stack (topology hiding SBC), i.e. a B2BUA keeping the Call-ID.
            continues = root is not roots[0] and ip in ended and root["src"] != roots[0]["src"]
            if continues:
                b2buas.update({ended[ip], root["src"]})
            _add(facts.hosts, root["src"])
            for msg in chain:
                _add(facts.hosts, msg["dst"])
                downs = index.children.get(msg["msg_id"], [])
                if downs:  # it went on from where it arrived: a proxy
                    proxies.add(msg["dst"])
                if len(downs) > 1:
                    facts.forks.append({"proxy": msg["dst"], "frame": msg["frame"],
                                        "branches": [by_id[d]["dst"] for d in downs if d in by_id]})
            previous_end = chain[-1]["dst"] if chain else root["dst"]
            ended[_ip(previous_end)] = previous_end
            if root is timed or (continues and ip in timed_ends and root["cseq_num"] == timed["cseq_num"]):
                facts.hop_delays_ms += [_first_answer_ms(msg, rows) for msg in chain]  # one try per link
                timed_ends.add(_ip(previous_end))
        facts.legs.append(_leg(call_id, n, roots[0], leg_links))
    facts.forwarding = _forwarding(rows, index, by_id)
    facts.roles = ["B2BUA" if h in b2buas else "proxy" if h in proxies else "UA" for h in facts.hosts]
    facts.names = [_name(h, rows) for h in facts.hosts]
    return facts


def _ip(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


def _add(hosts: list[str], host: str) -> None:
    if host not in hosts:
        hosts.append(host)


def _first_answer_ms(request: dict, rows: list[dict]) -> float | None:
    answer = next((r for r in rows if not r["is_request"] and r["txn_id"] == request["txn_id"]
                   and r["src"] == request["dst"] and r["ts_ns"] >= request["ts_ns"]), None)
    return round((answer["ts_ns"] - request["ts_ns"]) / 1e6, 3) if answer else None


def _forwarding(rows: list[dict], index: HopIndex, by_id: dict) -> list[dict]:
    out = []
    for msg in rows:  # rows are in time order, so the list is too
        for e in index.by_received.get(msg["msg_id"], []):
            what = msg["method"] if msg["is_request"] else f"{msg['status_code']} ({msg['cseq_method']})"
            sent = by_id.get(e["out_msg"])
            out.append({"message": what, "proxy": e["proxy"], "ms": round(e["forward_ns"] / 1e6, 3),
                        "frames": [msg["frame"], sent["frame"] if sent else None]})
    return out


def _leg(call_id: str, n: int, root: dict, leg_links: pl.DataFrame) -> dict:
    if n == 0:
        return {"call_id": call_id, "link_kind": "first", "evidence": f"first {root['method']} in frame {root['frame']}"}
    link = leg_links.filter((pl.col("call_id") == call_id) | (pl.col("linked_call_id") == call_id)).head(1)
    if link.is_empty():
        return {"call_id": call_id, "link_kind": None, "evidence": None}
    return {"call_id": call_id, "link_kind": link["link_kind"][0], "evidence": link["evidence"][0]}


def _name(host: str, rows: list[dict]) -> str | None:
    """Product name: User-Agent of requests it sent, else Server of responses it sent (RFC 3261 20.41, 20.35)."""
    agent = next((r["user_agent"] for r in rows if r["src"] == host and r["is_request"] and r["user_agent"]), None)
    return agent or next((r["server"] for r in rows if r["src"] == host and r["server"]), None)
