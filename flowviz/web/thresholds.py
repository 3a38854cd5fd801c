"""Thresholds form: the diagnostics thresholds panel's text fields -> the overrides of one browser session.

An override set is a plain dict {threshold name: number} holding only the values that differ from the
`Thresholds` defaults, so {} means "defaults" and two sets compare with ==; it is what the session stores
and what each capture's result.json records as the thresholds its findings were computed with.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Mapping

from flowviz.analysis.diagnose import THRESHOLD_NOTES, Thresholds
from flowviz.errors import FlowvizError

DEFAULTS = {f.name: f.default for f in fields(Thresholds)}
WHOLE = {name for name, default in DEFAULTS.items() if isinstance(default, int)}
# plain decimal numbers only: float() would also take "nan", "inf", "1_000" and "1e400"
NUMBER_RE = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")


class ThresholdError(FlowvizError):
    """A form value that is not a valid threshold; the message names every bad field on one line."""


def parse_thresholds(values: Mapping[str, object]) -> dict[str, int | float]:
    """Form values (name -> text or number; blank means the default) -> the overrides that differ from the
    defaults. Raises ThresholdError naming each bad field: not a number, negative, a fraction where the
    threshold counts something, or beyond the largest sensible value (100 %, MOS 5)."""
    overrides: dict[str, int | float] = {}
    problems = []
    for name, raw in values.items():
        if name not in DEFAULTS:
            problems.append(f"{_short(name)}: no such threshold")
            continue
        try:
            value = _number(name, raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if value is not None and value != DEFAULTS[name]:
            overrides[name] = value
    if problems:
        raise ThresholdError("Thresholds not applied: " + "; ".join(problems))
    return overrides


def _number(name: str, raw: object) -> int | float | None:
    """One field's value, None when left blank."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ValueError(f"{_short(raw)} is not a number")
    if isinstance(raw, str):
        text = raw.strip()
        if not NUMBER_RE.match(text) or len(text) > 15:
            raise ValueError(f"{_short(raw)} is not a number (write it like 500 or 2.5)")
        value = float(text)
    else:  # a number already (the stored overrides): only its range is checked
        text, value = number(raw), float(raw)
        if not math.isfinite(value):
            raise ValueError(f"{text} is not a number")
    if value < 0:
        raise ValueError(f"must not be negative (got {text})")
    most = THRESHOLD_NOTES[name].most
    if most is not None and value > most:
        raise ValueError(f"must be at most {most:g} (got {text})")
    if name in WHOLE:
        if not value.is_integer():
            raise ValueError(f"must be a whole number (got {text})")
        return int(value)
    return value


def _short(raw: object) -> str:
    """A user's value quoted for a message: on one line and short, whatever was typed."""
    text = re.sub(r"\s+", " ", str(raw))
    return repr(text if len(text) <= 20 else text[:20] + "...")


def thresholds_of(overrides: Mapping[str, int | float]) -> Thresholds:
    return Thresholds().with_overrides(**overrides)


def number(value: int | float) -> str:
    """5000.0 -> '5000', 2.5 -> '2.5': how a threshold is shown and pre-filled."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe(overrides: Mapping[str, int | float]) -> str:
    """'srd_ms = 1 ms (default 5000 ms), ...': the thresholds in effect that are not the defaults."""
    return ", ".join(f"{name} = {number(value)} {THRESHOLD_NOTES[name].unit} "
                     f"(default {number(DEFAULTS[name])} {THRESHOLD_NOTES[name].unit})"
                     for name, value in sorted(overrides.items()))
