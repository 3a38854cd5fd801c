"""Legs and call groups: which Call-IDs are one call.

Proxies keep the Call-ID (RFC 3261 16.6), so their hops never split a call. A B2BUA ends one
dialog and starts another with a new Call-ID; the two legs are linked by:
1. headers that carry the other leg's identity: X-CID / X-Call-ID (vendor, value = the other
   Call-ID) and Session-ID (RFC 7989: both legs carry the same UUID), in the configured order;
2. the Via stack, when the Call-ID changed but the received Vias were kept;
3. else a heuristic: a new INVITE leaves the host the first leg's INVITE entered, with the same
   caller (and preferably callee) user, while the first leg is still being set up; when the B2BUA
   rewrote the caller (number normalisation, CLI presentation), the same callee user and both legs
   ending together (within 2 s) stand in for the caller.
Every link keeps its kind and the evidence that made it. A call group is a connected component
of Call-IDs over these links; its id is a short stable hash of its sorted Call-IDs.
"""

from __future__ import annotations

import bisect
import hashlib

import polars as pl

from flowviz.sip.transactions import MAGIC_COOKIE, first_transmissions

HEURISTIC_WINDOW_NS = 10_000_000_000  # a B2BUA places the B-leg within seconds of receiving the A-leg
HEURISTIC_END_NS = 2_000_000_000  # ...and ends one leg right after the other (BYE or final response passed on)
REWRITTEN_CANDIDATES = 32  # A-legs a B-leg with a rewritten caller is compared with (the nearest before it)
LINK_COLUMNS = {"call_id": pl.Utf8, "linked_call_id": pl.Utf8, "link_kind": pl.Utf8, "evidence": pl.Utf8}


def call_group_id(call_ids: list[str]) -> str:
    """10 hex chars of sha1 over the sorted Call-IDs: stable across runs, safe in URLs and file names."""
    return hashlib.sha1("\n".join(sorted(call_ids)).encode()).hexdigest()[:10]


def header_links(msgs: pl.DataFrame) -> pl.DataFrame:
    """Links from leg headers: value naming another Call-ID, or a value two Call-IDs share."""
    rows = (
        msgs.filter(pl.col("leg_headers").list.len() > 0)
        .select("call_id", "frame", "leg_headers")
        .explode("leg_headers")
    )
    if rows.is_empty():
        return pl.DataFrame(schema=LINK_COLUMNS)
    rows = rows.select(
        "call_id", "frame", name=pl.col("leg_headers").struct.field("name"),
        value=pl.col("leg_headers").struct.field("value").str.split(";").list.first().str.strip_chars(),
    ).unique(["call_id", "name", "value"], keep="first", maintain_order=True)
    rows = rows.filter(pl.col("value").str.strip_chars("0") != "")  # RFC 7989 null UUID names nobody
    known = set(msgs["call_id"].drop_nulls().unique().to_list())
    out = []
    for r in rows.iter_rows(named=True):
        if r["value"] in known and r["value"] != r["call_id"]:
            evidence = f"{r['name']}: {r['value']} in frame {r['frame']}"
            out.append((r["call_id"], r["value"], f"header:{r['name']}", evidence))
    # Shared values (Session-ID UUIDs, or two legs quoting the same id): link every Call-ID to the first.
    shared = (
        rows.group_by("name", "value", maintain_order=True)
        .agg(pl.col("call_id"), pl.col("frame"))
        .filter(pl.col("call_id").list.len() > 1)
    )
    for r in shared.iter_rows(named=True):
        first = r["call_id"][0]
        for other, frame in zip(r["call_id"][1:], r["frame"][1:]):
            out.append((other, first, f"header:{r['name']}", f"{r['name']}: {r['value']} in frames {r['frame'][0]} and {frame}"))
    return pl.DataFrame(out, schema=LINK_COLUMNS, orient="row")


def via_links(msgs: pl.DataFrame) -> pl.DataFrame:
    """A new Call-ID on a request that still carries the received Via stack: its via[1] branch is
    the top branch of a request of another Call-ID (an SBC or B2BUA that keeps Vias). RFC 3261
    branches with the magic cookie are unique (8.1.1.7), so this is as strong as a header."""
    requests = first_transmissions(msgs).filter(pl.col("is_request"))
    cookie = MAGIC_COOKIE
    up = requests.filter(pl.col("top_branch").str.starts_with(cookie)).select(
        a_call_id="call_id", a_frame="frame", a_ts="ts_ns", branch="top_branch", method="cseq_method")
    down = requests.filter(pl.col("via_count") >= 2).select(
        b_call_id="call_id", b_frame="frame", b_ts="ts_ns", branch=pl.col("via_branches").list.get(1),
        method="cseq_method")
    pairs = (
        down.join(up, on=["branch", "method"])
        .filter((pl.col("a_call_id") != pl.col("b_call_id"))
                & ((pl.col("b_ts") - pl.col("a_ts")).abs() <= HEURISTIC_WINDOW_NS))
        .unique(["b_call_id", "a_call_id"], keep="first", maintain_order=True)
    )
    out = [(r["b_call_id"], r["a_call_id"], "via", f"Via branch {r['branch']} of frame {r['a_frame']} kept under a new "
            f"Call-ID in frame {r['b_frame']}") for r in pairs.iter_rows(named=True)]
    return pl.DataFrame(out, schema=LINK_COLUMNS, orient="row")


def heuristic_links(msgs: pl.DataFrame, req_hops: pl.DataFrame, linked: set[str]) -> pl.DataFrame:
    """B-leg INVITEs (Call-IDs not yet linked) matched to the A-leg whose INVITE entered their source host.

    Required: the B-leg leaves the IP the A-leg INVITE went to, from another endpoint than the
    A-leg caller, with the same caller user, while the A-leg still waits for its final response.
    The callee user may differ (a PBX maps the dialled number to a registered user), but a pair
    with the same callee wins over one without; then the nearest in time. One B-leg per A-leg.
    """
    sent = first_transmissions(msgs)
    invites = sent.filter(pl.col("is_request") & (pl.col("method") == "INVITE") & pl.col("to_tag").is_null())
    finals = sent.filter(~pl.col("is_request") & (pl.col("status_code") >= 200)).group_by("txn_id").agg(
        a_final_ts=pl.col("ts_ns").min()
    )
    forwarded = req_hops["down_msg"].to_list()
    roots = invites.filter(~pl.col("msg_id").is_in(forwarded)).sort("ts_ns").unique("call_id", keep="first")
    entered = invites.join(finals, on="txn_id", how="left").select(
        a_call_id="call_id", a_frame="frame", a_ts="ts_ns", a_final_ts="a_final_ts", host_ip="dst_ip",
        a_src="src", caller="from_user", callee="to_user", a_to="to_user",
    ).filter(pl.col("caller").is_not_null()).sort("a_ts")
    b_legs = roots.filter(~pl.col("call_id").is_in(list(linked))).select(
        b_call_id="call_id", b_frame="frame", b_ts="ts_ns", host_ip="src_ip", b_src="src", b_dst="dst",
        caller="from_user", callee="to_user", b_to="to_user",
    ).filter(pl.col("caller").is_not_null()).sort("b_ts")
    # Nearest earlier A-leg per B-leg (as-of joins keep this O(n log n) on busy hosts): first with the
    # same callee, then with the same caller only for the B-legs still unmatched.
    same_callee = _nearest(b_legs, entered, ["host_ip", "caller", "callee"])
    rest = b_legs.filter(~pl.col("b_call_id").is_in(same_callee["b_call_id"].implode()))
    any_callee = _nearest(rest, entered, ["host_ip", "caller"])
    pairs = (
        pl.concat([same_callee, any_callee], how="diagonal_relaxed")
        .with_columns(same_callee=(pl.col("a_to") == pl.col("b_to")).fill_null(False), gap=pl.col("b_ts") - pl.col("a_ts"))
        .sort(["same_callee", "gap"], descending=[True, False])
        .unique("a_call_id", keep="first")
        .sort("b_ts")
        .rename({"caller": "a_from"})
    )
    out = []
    for r in pairs.iter_rows(named=True):
        callee = f"callee {r['a_to']!r}" if r["same_callee"] else f"callee {r['a_to']!r} -> {r['b_to']!r}"
        evidence = (
            f"same caller {r['a_from']!r}, {callee}; INVITE left {r['host_ip']} {r['gap'] / 1e6:.1f} ms after the "
            f"A-leg INVITE reached it, before its final response (frames {r['a_frame']} -> {r['b_frame']})"
        )
        out.append((r["b_call_id"], r["a_call_id"], "heuristic", evidence))
    out += _rewritten_caller_links(sent, entered, b_legs, pairs)
    return pl.DataFrame(out, schema=LINK_COLUMNS, orient="row")


def _rewritten_caller_links(sent: pl.DataFrame, entered: pl.DataFrame, b_legs: pl.DataFrame,
                            paired: pl.DataFrame) -> list[tuple]:
    """B-legs still unmatched whose caller differs from every A-leg's (a B2BUA that rewrites the calling number):
    the same callee user, leaving the host the A-leg INVITE entered (not back to nor from its caller) within
    the window and before the A-leg's final response, and, since the caller no longer vouches for the pair,
    both legs ending within HEURISTIC_END_NS of each other (the B2BUA passes the BYE, or the final response,
    from one leg to the other). A-legs already paired are left out; one B-leg per A-leg, the nearest.

    Each B-leg looks at most at the REWRITTEN_CANDIDATES A-legs that entered its host for the same callee
    just before it: a host that sends and receives every INVITE of a capture (sipp on one loopback address)
    must not make this one pair per A x B."""
    rest = b_legs.filter(~pl.col("b_call_id").is_in(paired["b_call_id"].implode()) & pl.col("callee").is_not_null())
    free = entered.filter(~pl.col("a_call_id").is_in(paired["a_call_id"].implode()) & pl.col("callee").is_not_null())
    if rest.is_empty() or free.is_empty():
        return []
    keys = free.select("host_ip", "callee").unique()
    rest = rest.join(keys, on=["host_ip", "callee"], how="semi")
    if rest.is_empty():
        return []
    ends = dict(_leg_ends(sent).iter_rows())
    by_key: dict[tuple, list[dict]] = {}
    wanted = rest.select("host_ip", "callee").unique()
    for a in free.join(wanted, on=["host_ip", "callee"], how="semi").sort("a_ts").to_dicts():
        by_key.setdefault((a["host_ip"], a["callee"]), []).append(a)  # entered is sorted by time
    times = {k: [a["a_ts"] for a in v] for k, v in by_key.items()}
    found = []
    for b in rest.to_dicts():
        key = (b["host_ip"], b["callee"])
        b_end = ends.get(b["b_call_id"])
        i = bisect.bisect_left(times[key], b["b_ts"])  # A-legs strictly before the B-leg, nearest first
        for a in reversed(by_key[key][max(0, i - REWRITTEN_CANDIDATES):i]):
            gap = b["b_ts"] - a["a_ts"]
            if gap > HEURISTIC_WINDOW_NS:
                break
            a_end = ends.get(a["a_call_id"])
            if (a["a_call_id"] != b["b_call_id"] and a["caller"] != b["caller"] and b["b_src"] != a["a_src"]
                    and b["b_dst"] != a["a_src"] and (a["a_final_ts"] is None or b["b_ts"] < a["a_final_ts"])
                    and a_end is not None and b_end is not None and abs(a_end - b_end) <= HEURISTIC_END_NS):
                found.append((gap, b["b_ts"], a, b, abs(a_end - b_end)))
                break  # the nearest A-leg that fits
    out, taken = [], set()
    for gap, _, a, b, end_gap in sorted(found, key=lambda f: (f[0], f[1])):
        if a["a_call_id"] in taken:
            continue
        taken.add(a["a_call_id"])
        out.append((b["b_ts"], (b["b_call_id"], a["a_call_id"], "heuristic",
                    f"caller rewritten {a['caller']!r} -> {b['caller']!r}, same callee {b['callee']!r}; INVITE left "
                    f"{b['host_ip']} {gap / 1e6:.1f} ms after the A-leg INVITE reached it, before its final response, "
                    f"and the legs ended {end_gap / 1e6:.1f} ms apart (frames {a['a_frame']} -> {b['b_frame']})")))
    return [link for _, link in sorted(out, key=lambda x: x[0])]


def _leg_ends(sent: pl.DataFrame) -> pl.DataFrame:
    """call_id -> end_ts: its first BYE, else the first final response to an INVITE (first transmissions)."""
    bye = sent.filter(pl.col("is_request") & (pl.col("method") == "BYE")).group_by("call_id").agg(
        bye_ts=pl.col("ts_ns").min())
    final = sent.filter(~pl.col("is_request") & (pl.col("cseq_method") == "INVITE") & (pl.col("status_code") >= 200)
                        ).group_by("call_id").agg(final_ts=pl.col("ts_ns").min())
    return final.join(bye, on="call_id", how="full", coalesce=True).select(
        "call_id", end_ts=pl.coalesce("bye_ts", "final_ts")).filter(pl.col("call_id").is_not_null())


def _nearest(b_legs: pl.DataFrame, entered: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The last A-leg INVITE that entered the B-leg's host (same keys) strictly before the B-leg left."""
    right = entered if "callee" in keys else entered.drop("callee")
    left = b_legs if "callee" in keys else b_legs.drop("callee")
    return _valid(left.join_asof(right, left_on="b_ts", right_on="a_ts", by=keys, strategy="backward",
                                 tolerance=HEURISTIC_WINDOW_NS, allow_exact_matches=False,
                                 check_sortedness=False))  # both sides sorted by time above


def _valid(pairs: pl.DataFrame) -> pl.DataFrame:
    return pairs.filter(
        pl.col("a_call_id").is_not_null() & (pl.col("a_call_id") != pl.col("b_call_id"))
        & (pl.col("b_src") != pl.col("a_src")) & (pl.col("b_dst") != pl.col("a_src"))
        & (pl.col("a_final_ts").is_null() | (pl.col("b_ts") < pl.col("a_final_ts")))
    )


def call_groups(call_ids: list[str], links: pl.DataFrame) -> dict[str, list[str]]:
    """Connected components: group id -> Call-IDs in first-seen order (the order of `call_ids`)."""
    parent = {c: c for c in call_ids}
    position = {c: i for i, c in enumerate(call_ids)}

    def find(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for a, b in zip(links["call_id"].to_list(), links["linked_call_id"].to_list()):
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb, key=position.get)] = min(ra, rb, key=position.get)
    members: dict[str, list[str]] = {}
    for c in call_ids:
        members.setdefault(find(c), []).append(c)
    return {call_group_id(m): m for m in members.values()}
