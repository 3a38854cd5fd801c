"""Redacted ladders: a ladder model with every text column through a Redactor, for images drawn from it."""

from __future__ import annotations


def redact_ladder(model, redactor):
    """The ladder (flowviz.ladder.Ladder) with every text column (names, keys, labels, raw messages) through
    the redactor: what images (PNG, PDF) are drawn from, since pixels cannot be redacted afterwards."""
    import dataclasses

    import polars as pl

    def frame(df: pl.DataFrame) -> pl.DataFrame:
        texts = [c for c, t in df.schema.items() if t == pl.Utf8]
        return df.with_columns(
            [pl.col(c).map_elements(redactor.redact_text, return_dtype=pl.Utf8) for c in texts]) if texts else df

    return dataclasses.replace(model, columns=frame(model.columns), arrows=frame(model.arrows),
                               media=frame(model.media), events=frame(model.events), markers=frame(model.markers))
