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
    received_as: dict[int, int] = field(default_factory=dict)  # message a hop sent on -> the copy it received

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
        received_as = {e["out_msg"]: up for up, edges in by_received.items() for e in edges}
        return cls(children_of(req_hops), set(req_hops["down_msg"].to_list()), by_received, received_as)


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
            first = next((r for r in rows if r["call_id"] == call_id and r["is_request"]), None)
            if first is None:  # only responses (their request was not captured): the path runs back along them
                answer = next((r for r in rows if r["call_id"] == call_id), rows[0])
                first = {**answer, "src": answer["dst"], "dst": answer["src"], "msg_id": -1}
            roots = [first]
        if n and previous_end is not None:
            b2buas.update({previous_end, roots[0]["src"]})
        timed = next((r for r in roots if measured and r["msg_id"] == measured["msg_id"]), roots[0])
        timed_ends: set[str] = set()  # IPs where the timed try (or its continuation) arrived
        ended: dict[str, str] = {}  # IP where a try arrived -> that host
        for root in roots:
            chain = [by_id[m] for m in request_path(root["msg_id"], index.children) if m in by_id]
            if root["msg_id"] < 0:  # stands for a request that is not in the capture: its ends only, no delay
                chain = [root]
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
                facts.hop_delays_ms += [_first_answer_ms(msg, rows) if msg["msg_id"] >= 0 else None
                                        for msg in chain]  # one try per link
                timed_ends.add(_ip(previous_end))
        facts.legs.append(_leg(call_id, n, roots[0], leg_links))
    facts.forwarding = _forwarding(rows, index, by_id)
    facts.roles = ["B2BUA" if h in b2buas else "proxy" if h in proxies else "UA" for h in facts.hosts]
    facts.names = _names(facts.hosts, rows, by_id, index)
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
            # sent "before" it was received: the capture's clock went back in between, so no delay
            ms = round(e["forward_ns"] / 1e6, 3) if e["forward_ns"] >= 0 else None
            out.append({"message": what, "proxy": e["proxy"], "ms": ms,
                        "frames": [msg["frame"], sent["frame"] if sent else None]})
    return out


def _leg(call_id: str, n: int, root: dict, leg_links: pl.DataFrame) -> dict:
    if n == 0:
        what = root["method"] if root["is_request"] else f"message ({root['status_code']} to {root['cseq_method']})"
        return {"call_id": call_id, "link_kind": "first", "evidence": f"first {what} in frame {root['frame']}"}
    link = leg_links.filter((pl.col("call_id") == call_id) | (pl.col("linked_call_id") == call_id)).head(1)
    if link.is_empty():
        return {"call_id": call_id, "link_kind": None, "evidence": None}
    return {"call_id": call_id, "link_kind": link["link_kind"][0], "evidence": link["evidence"][0]}


def _names(hosts: list[str], rows: list[dict], by_id: dict, index: HopIndex) -> list[str | None]:
    """Product name of each host from what the host itself wrote (RFC 3261 20.41, 20.35): the User-Agent of
    requests it sent, else the Server of responses it sent, else either header of another message it sent.

    A header a host only passed on never names it: a proxy (or a topology-hiding hop that keeps the Call-ID)
    copies the User-Agent of the request and the Server of the response it forwards. A value is copied when
    the message the host received carries it too: the received copy of a hop edge, else any copy of the same
    message (Call-ID, CSeq, request or status other than 100, which is hop-local) that reached the host's IP
    from another host before. A value a forwarder added (its own Server on the responses it passes back) is
    its own. A response's User-Agent equal to that of the request it answers is an echo (some registrars).
    """
    wanted = set(hosts)
    arrived: dict[str, dict[tuple, list[dict]]] = {}  # IP -> message key -> copies that reached it
    asked: dict[tuple, set[str]] = {}  # (Call-ID, CSeq, method) -> User-Agents of its requests
    found: dict[str, dict[str, str]] = {h: {} for h in hosts}  # host -> first value of each kind
    for r in rows:  # time order
        key = (r["call_id"], r["cseq_num"], r["cseq_method"], r["is_request"], r["status_code"])
        exchange = key[:3]
        if index.received_as.get(r["msg_id"]) in by_id:
            received = [by_id[index.received_as[r["msg_id"]]]]
        elif r["status_code"] == 100:
            received = []
        else:
            received = [c for c in arrived.get(_ip(r["src"]), {}).get(key, []) if c["src"] != r["src"]]
        arrived.setdefault(_ip(r["dst"]), {}).setdefault(key, []).append(r)
        if r["is_request"] and r["user_agent"]:
            asked.setdefault(exchange, set()).add(r["user_agent"])
        if r["src"] not in wanted:
            continue
        kind = "request" if r["is_request"] else "response"
        for header in ("user_agent", "server"):
            value = r[header]
            if not value or any(c[header] == value for c in received):
                continue
            if kind == "response" and header == "user_agent" and value in asked.get(exchange, ()):
                continue
            found[r["src"]].setdefault(f"{kind} {header}", value)
    order = ("request user_agent", "response server", "response user_agent", "request server")
    return [next((found[h][k] for k in order if k in found[h]), None) for h in hosts]
