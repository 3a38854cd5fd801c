"""Figure themes: colours by message class, fonts and backgrounds shared by every flowviz figure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Theme:
    name: str
    paper: str
    plot: str
    text: str
    lifeline: str
    font_family: str = "DejaVu Sans, Arial, sans-serif"
    font_size: int = 12
    # message classes of flowviz.ladder.CLASSES, then RTP media
    classes: dict[str, str] = field(default_factory=dict)
    media: str = "#2a9d8f"
    media_fill: str = "rgba(42, 157, 143, 0.18)"
    dtmf: str = "#8e44ad"
    severities: dict[str, str] = field(default_factory=lambda: {"info": "#2980b9", "warning": "#e67e22",
                                                                 "error": "#c0392b"})
    grid: str = "#e5e8ec"  # axis grid lines of the media and stream figures
    # one colour per RTP stream in the media plots
    series: tuple[str, ...] = ("#1f5fbf", "#2a9d8f", "#c76a12", "#8e44ad", "#c0392b", "#7f7f7f")


LIGHT = Theme(
    name="light", paper="#ffffff", plot="#ffffff", text="#222222", lifeline="#9aa0a6",
    classes={"request": "#1f5fbf", "1xx": "#7f7f7f", "2xx": "#2e8b57", "3xx": "#b8860b", "4xx-6xx": "#c0392b"},
)
DARK = Theme(
    name="dark", paper="#1e1e1e", plot="#1e1e1e", text="#e8e8e8", lifeline="#6b7075",
    classes={"request": "#6fa8ff", "1xx": "#b0b0b0", "2xx": "#5fd38d", "3xx": "#f0c05a", "4xx-6xx": "#ff6b5b"},
    media="#4fd1c5", media_fill="rgba(79, 209, 197, 0.18)", dtmf="#c39bd3", grid="#3a3f45",
    # the light palette brightened so that each line stands out on the dark paper
    series=("#6fa8ff", "#4fd1c5", "#f0a04b", "#c39bd3", "#ff6b5b", "#b0b0b0"),
)
THEMES = {t.name: t for t in (LIGHT, DARK)}
