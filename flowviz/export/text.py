"""Text exports of a ladder: ASCII ladder for a ticket comment, Mermaid sequenceDiagram, PlantUML."""

from __future__ import annotations

import textwrap

from flowviz.ladder import Ladder

# lifeline, SIP arrow, RTP band, DTMF arrow, right head, left head
CHARSETS = {"ascii": ("|", "-", "=", ".", ">", "<"), "unicode": ("│", "─", "═", "┄", "▶", "◀")}
TIME_WIDTH = 9  # "   11.517" seconds from the call start, then a space
MIN_GAP = 12


def to_txt(ladder: Ladder, *, max_width: int = 120, charset: str = "ascii") -> str:
    """ASCII ladder: one line per message (time from the call start, arrow with label, delta from the
    previous message), one '=' band per RTP stream, one '.' arrow per DTMF digit. Labels, names and
    addresses are cut with '~' to fit `max_width`. charset 'unicode' draws with box-drawing characters."""
    chars = CHARSETS[charset]
    columns = ladder.columns.to_dicts()
    n = len(columns)
    heads = [(c["name"], c["key"]) for c in columns]
    half = max(max(len(a), len(b)) for a, b in heads) // 2 + 1 if heads else 1
    need = MIN_GAP
    for r in ladder.rows():
        span = abs(r["dst_col"] - r["src_col"]) or 1
        need = max(need, -(-(len(_row_label(r)) + 7) // span))
    need = max(need, 2 * half)
    marks = ladder.markers_of()
    suffix = 15 + (7 if marks else 0)  # "  +10506.323 ms" after the last lifeline, then "  !1,2"
    room = max_width - TIME_WIDTH - half - 1 - suffix
    gap = need if n < 2 else max(MIN_GAP, min(need, room // (n - 1)))
    if n > 1 and 2 * half > gap:  # long names or IPv6 addresses: cut them to the space between lifelines
        heads = [(_cut(a, gap - 1), _cut(b, gap - 1)) for a, b in heads]
        half = gap // 2
    xs = [half + i * gap for i in range(n)]
    width = (xs[-1] if xs else 0) + half + 1
    lines = [" " * TIME_WIDTH + _centred(xs, [h[0] for h in heads], width).rstrip(),
             " " * TIME_WIDTH + _centred(xs, [h[1] for h in heads], width).rstrip(),
             f"{'time s':>{TIME_WIDTH - 1}} " + _lifelines(xs, width, chars[0]).rstrip()]
    for r in ladder.rows():
        row = list(_lifelines(xs, (xs[-1] + 1) if xs else 1, chars[0]))
        a, b = xs[r["src_col"]], xs[r["dst_col"]]
        fill = {"sip": chars[1], "rtp": chars[2], "dtmf": chars[3]}[r["kind"]]
        _draw(row, a, b, _row_label(r), fill, chars[4:])
        delta = f"+{r['delta_ms']:.3f} ms" if r["kind"] == "sip" else ""
        if r["kind"] == "sip" and r.get("points"):
            delta += f"  @{r['points']}"
        if r["kind"] == "sip" and r["seq"] in marks:
            delta += "  !" + ",".join(str(m["number"]) for m in marks[r["seq"]])
        lines.append(f"{r['t_ms'] / 1e3:>{TIME_WIDTH - 1}.3f} " + "".join(row) + (f"  {delta}" if delta else ""))
    if ladder.points:
        lines += ["", "Capture points (@n: where the message was seen): "
                  + ", ".join(f"{i} {name}" for i, name in enumerate(ladder.points, 1))]
    lines += _notes(ladder, max_width)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _notes(ladder: Ladder, max_width: int) -> list[str]:
    """Diagnostics under the ladder: '!n severity rule: title. explanation', wrapped to the width."""
    if ladder.markers.is_empty():
        return []
    out = ["", "Diagnostics (!n marks the message that shows it):"]
    for m in ladder.markers.to_dicts():
        where = f" (frames {', '.join(map(str, m['frames'][:6]))})" if m["frames"] else ""
        text = f"!{m['number']} {m['severity']} {m['rule']}: {m['title']}{where}. {m['explanation'] or ''}"
        out += textwrap.wrap(text.strip(), width=max_width, initial_indent="  ", subsequent_indent="      ")
    return out


def _note_text(m: dict) -> str:
    return f"!{m['number']} {m['severity']}: {m['title']}"


def _row_label(r: dict) -> str:
    return r["text"] if r["kind"] == "sip" else r["label"]


def _lifelines(xs: list[int], width: int, line: str = "|") -> str:
    row = [" "] * width
    for x in xs:
        row[x] = line
    return "".join(row)


def _centred(xs: list[int], texts: list[str], width: int) -> str:
    row = [" "] * (width + 40)
    for x, text in zip(xs, texts):
        start = max(0, x - len(text) // 2)
        row[start:start + len(text)] = text
    return "".join(row)


def _draw(row: list[str], a: int, b: int, label: str, fill: str, heads: tuple[str, str] = (">", "<")) -> None:
    """Arrow from lifeline a to lifeline b over row[a+1 .. b-1], label centred; '>' or '<' at the head."""
    if a == b:  # a message to itself: a short loop mark right of the lifeline
        text = f"{heads[1]}{fill}{fill} {label}"
        row[a + 1:a + 1 + len(text)] = text[:len(row) - a - 1]
        return
    lo, hi = min(a, b), max(a, b)
    core = hi - lo - 1  # cells strictly between the two lifelines
    inner = f" {_cut(label, core - 6)} " if core >= 8 else ""
    body = core - 2  # minus the tail and the head
    left = (body - len(inner)) // 2
    line = fill * left + inner + fill * (body - left - len(inner))
    row[lo + 1:hi] = (fill + line + heads[0]) if b > a else (heads[1] + line + fill)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "~"


MERMAID_CODES = str.maketrans({"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;"})


def _mermaid_text(text: str) -> str:
    """One pass, so the ';' of an entity code is not escaped again."""
    return text.translate(MERMAID_CODES)


def to_mermaid(ladder: Ladder) -> str:
    """Mermaid sequenceDiagram (renders in GitHub/GitLab Markdown inside a ```mermaid block): requests as
    solid arrows, responses dashed, RTP streams as dotted async arrows, DTMF digits solid async ones."""
    lines = ["sequenceDiagram"]
    columns = ladder.columns.to_dicts()
    marks = ladder.markers_of()
    for c in columns:
        lines.append(f"    participant C{c['col']} as {_mermaid_text(c['name'])}<br/>{_mermaid_text(c['key'])}")
    for r in ladder.rows():
        if r["kind"] != "sip":
            arrow = "--)" if r["kind"] == "rtp" else "-)"
        else:
            arrow = "->>" if r["is_request"] else "-->>"
        lines.append(f"    C{r['src_col']}{arrow}C{r['dst_col']}: {_mermaid_text(_row_label(r))}")
        for m in marks.get(r.get("seq"), []) if r["kind"] == "sip" else []:
            over = ",".join(f"C{c}" for c in sorted({r["src_col"], r["dst_col"]}))
            lines.append(f"    Note over {over}: {_mermaid_text(_note_text(m))}")
    for m in ladder.markers.filter(ladder.markers["seq"].is_null()).to_dicts():
        over = f"C0,C{len(columns) - 1}" if len(columns) > 1 else "C0"
        lines.append(f"    Note over {over}: {_mermaid_text(_note_text(m))}")
    return "\n".join(lines) + "\n"


def _plantuml_text(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")


def to_plantuml(ladder: Ladder) -> str:
    """PlantUML sequence diagram (plantuml.jar, GitLab): requests solid, responses dashed, RTP streams and
    DTMF digits thin '->>'."""
    lines = ["@startuml", "skinparam responseMessageBelowArrow true"]
    marks = ladder.markers_of()
    for c in ladder.columns.to_dicts():
        lines.append(f'participant "{_plantuml_text(c["name"])}\\n{c["key"]}" as C{c["col"]}')
    for r in ladder.rows():
        if r["kind"] != "sip":
            arrow = "->>"
        else:
            arrow = "->" if r["is_request"] else "-->"
        lines.append(f"C{r['src_col']} {arrow} C{r['dst_col']} : {_plantuml_text(_row_label(r))}")
        for m in marks.get(r.get("seq"), []) if r["kind"] == "sip" else []:
            lines.append(f"note right: {_plantuml_text(_note_text(m))}")
    last = len(ladder.columns) - 1
    for m in ladder.markers.filter(ladder.markers["seq"].is_null()).to_dicts():
        lines.append(f"note over C0, C{last} : {_plantuml_text(_note_text(m))}" if last else
                     f"note over C0 : {_plantuml_text(_note_text(m))}")
    lines.append("@enduml")
    return "\n".join(lines) + "\n"
