"""Text exports on a small hand-made ladder: drawing rules of txt, Mermaid escapes, PlantUML arrows."""

from __future__ import annotations

import polars as pl

from flowviz.export.text import to_mermaid, to_plantuml, to_txt
from flowviz.ladder import build_ladder
from tests.unit.test_ladder_model import CALL, MESSAGES, A, P, frame, message


def test_txt_arrows_point_the_right_way_and_mark_retransmissions():
    lines = to_txt(build_ladder(MESSAGES, CALL), max_width=160).splitlines()
    assert lines[0].split() == ["Linphone", "Kamailio", "UA"]
    assert lines[1].split() == ["10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"]
    body = lines[3:]
    assert len(body) == 6
    assert "INVITE (SDP PCMU/8000) --" in body[0] and body[0].index("->|") < body[0].index("+0.000 ms")
    assert body[1].index("|<---") < body[1].index("100 Trying")
    assert "[retransmission]" in body[3]
    assert body[3].startswith("   0.503 ") and body[3].endswith("+500.000 ms")
    assert body[4].index("<-") > body[0].index("|-")  # 486 from B to P is drawn in the second gap


def test_txt_cuts_labels_to_the_width():
    long = frame([message(0, 0, A, P, (480, "Temporarily Unavailable because of a very long reason phrase"))])
    call = {**CALL, "hosts": [A, P]}
    text = to_txt(build_ladder(long, call), max_width=60)
    assert max(map(len, text.splitlines())) <= 60
    assert "~" in text.splitlines()[3]


def test_mermaid_escapes_characters_that_end_or_break_a_message():
    msgs = frame([message(0, 0, A, P, "MESSAGE", cseq=(1, "MESSAGE")),
                  message(1, 1, P, A, (499, "a;b #c <d>"), cseq=(1, "MESSAGE"))])
    text = to_mermaid(build_ladder(msgs, {**CALL, "hosts": [A, P]}))
    assert "    C0->>C1: MESSAGE" in text
    assert "    C1-->>C0: 499 a#59;b #35;c #lt;d#gt;" in text


def test_plantuml_arrows_and_participants():
    text = to_plantuml(build_ladder(MESSAGES, CALL))
    lines = text.splitlines()
    assert lines[0] == "@startuml" and lines[-1] == "@enduml"
    assert 'participant "Linphone\\n10.0.0.1:5060" as C0' in lines
    assert "C0 -> C1 : INVITE (SDP PCMU/8000)" in lines
    assert "C2 --> C1 : 486 Busy Here" in lines


def test_empty_media_and_events_frames_are_fine():
    ladder = build_ladder(MESSAGES, CALL, pl.DataFrame())
    assert ladder.media.is_empty() and ladder.events.is_empty()
    assert to_txt(ladder).count("\n") == 3 + 6


def test_txt_cuts_long_ipv6_headers_so_columns_do_not_run_together():
    v6 = ["[2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:5060", "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:2]:5060",
          "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:3]:5060", "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:4]:5060"]
    msgs = frame([message(i, i, v6[i], v6[i + 1], "INVITE") for i in range(3)])
    text = to_txt(build_ladder(msgs, {**CALL, "hosts": v6, "host_roles": ["UA", "proxy", "proxy", "UA"],
                                      "host_names": [None] * 4}))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    assert len(lines[1].split()) == 4 and lines[1].split()[0].endswith("~")


def test_diagnostics_marks_and_notes_in_every_text_format():
    from tests.unit.test_ladder_model import FINDINGS

    ladder = build_ladder(MESSAGES, CALL, findings=FINDINGS)
    txt = to_txt(ladder).splitlines()
    assert txt[3 + 4].endswith("+97.000 ms  !1")
    assert txt[-3:] == ["Diagnostics (!n marks the message that shows it):",
                        "  !1 warning sip.rejected: Call rejected (frames 5, 6). The INVITE was answered 486 Busy Here.",
                        "  !2 error media.none: No media. No RTP."]
    assert max(map(len, txt)) <= 120
    mermaid = to_mermaid(ladder).splitlines()
    at = mermaid.index("    C2-->>C1: 486 Busy Here")
    assert mermaid[at + 1] == "    Note over C1,C2: !1 warning: Call rejected"
    assert mermaid[-1] == "    Note over C0,C2: !2 error: No media"
    plantuml = to_plantuml(ladder).splitlines()
    at = plantuml.index("C2 --> C1 : 486 Busy Here")
    assert plantuml[at + 1] == "note right: !1 warning: Call rejected"
    assert plantuml[-2] == "note over C0, C2 : !2 error: No media"


def test_unicode_charset_draws_the_same_layout_with_box_characters():
    msgs = frame([message(0, 0, A, P, "INVITE"), message(1, 1, P, A, (100, "trying -- your call"))])
    call = {**CALL, "hosts": [A, P]}
    plain = to_txt(build_ladder(msgs, call)).splitlines()
    fancy = to_txt(build_ladder(msgs, call), charset="unicode").splitlines()
    assert [len(line) for line in fancy] == [len(line) for line in plain]
    assert "│" in fancy[2] and fancy[3].count("▶") == 1 and fancy[4].count("◀") == 1
    assert "trying -- your call" in fancy[4]  # labels keep their own characters
    assert fancy[3].replace("│", "|").replace("─", "-").replace("▶", ">") == plain[3]
