"""Dataset: the batch output folder: Parquet partitions per capture, CSV, totals and the report, written as
results arrive so memory does not grow with the rows of every capture."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import polars as pl

from flowviz.batch.conditions import Condition, match_conditions
from flowviz.batch.report import report_html, report_markdown, report_model, worst_calls
from flowviz.batch.results import capture_row, enrich
from flowviz.batch.schemas import CALL_JSON, CAPTURE_SCHEMA, DATASETS, KPI_SCHEMA, OUTPUTS, _S
from flowviz.errors import FlowvizError
from flowviz.export.tables import csv_value


def check_outdir(outdir: Path, force: bool) -> None:
    """Refuse an existing non-empty OUTDIR unless force; with force, remove only what batch writes."""
    if outdir.exists() and not outdir.is_dir():
        raise FlowvizError(f"{outdir} exists and is not a folder; choose another -o OUTDIR")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not force:
            raise FlowvizError(f"{outdir} exists and is not empty; choose another -o OUTDIR "
                               "or add --force to replace it")
        import shutil

        for name in OUTPUTS:
            target = outdir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def write_csv(path: Path, frame: pl.DataFrame, more=()) -> None:
    """CSV of a frame (and of `more` frames of the same columns, one at a time): lists of plain values
    joined by ';', nested values as JSON, null as empty."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(frame.columns)
        for each in itertools.chain([frame], more):
            for row in each.select(frame.columns).iter_rows():
                writer.writerow([csv_value(v) for v in row])


def write_partitions(outdir: Path, result: dict) -> None:
    """calls, streams and kpis of one analysed capture -> OUTDIR/<table>/capture_id=<id>/part.parquet."""
    for name, schema in DATASETS.items():
        part = outdir / name / f"capture_id={result['capture_id']}"
        part.mkdir(parents=True, exist_ok=True)
        _frame(result[name], schema).write_parquet(part / "part.parquet")


# What the totals and the report keep of each call (not the whole row).
KPI_CALL_KEYS = ("method", "final_status", "state", "srd_ms", "failed_srd_ms", "disconnect_ms", "duration_s")
WORST_KEYS = ("capture_id", "call_group_id", "from_user", "from_uri", "to_user", "to_uri", "state", "final_status",
              "start_ts", "worst_mos", "errors", "warnings", "problems")


class Collector:
    """Takes each capture's result as it arrives: writes its partitions at once and keeps only what the
    totals and the report need, so the parent's memory does not grow with the rows of every capture."""

    def __init__(self, outdir: Path, conditions: list[Condition], worst_limit: int = 20):
        self.outdir = Path(outdir)
        self.conditions = conditions
        self.worst_limit = worst_limit
        self.registers: list[dict] = []
        self.kpi_calls: list[dict] = []
        self.worst: list[dict] = []
        self.matches = [{"condition": c.text, "table": c.table, "matched": 0, "captures": set()} for c in conditions]

    def add(self, result: dict) -> dict:
        """One capture's result (analyze_capture or failed_result) -> its capture_row()."""
        enrich(result)
        if result["ok"]:
            write_partitions(self.outdir, result)
            self.registers.append(result["registers"])
            self.kpi_calls += [{k: c.get(k) for k in KPI_CALL_KEYS} for c in result["calls"]]
            self.worst = worst_calls(self.worst + [{k: c.get(k) for k in WORST_KEYS} for c in result["calls"]],
                                     self.worst_limit)
            for total, found in zip(self.matches, match_conditions(self.conditions, [result])):
                total["matched"] += found["matched"]
                total["captures"].update(found["captures"])
        return capture_row(result)

    def finish(self, captures: list[dict], inputs_bad: list[tuple[str, str]], seconds: float) -> list[dict]:
        """captures: the capture_row()s in input order. Writes the CSVs, the totals and the report;
        returns the --fail-on results."""
        from flowviz.analysis.kpis import combine_register_attempts, compute_kpis

        out = self.outdir
        out.mkdir(parents=True, exist_ok=True)
        ok = [c["capture_id"] for c in captures if c["ok"]]
        for name, schema in DATASETS.items():
            (out / name).mkdir(exist_ok=True)
            parts = (pl.read_parquet(out / name / f"capture_id={cid}" / "part.parquet") for cid in ok)
            write_csv(out / f"{name}.csv", pl.DataFrame(schema=schema), more=parts)
        kpis_all = compute_kpis(self.kpi_calls, combine_register_attempts(self.registers)) if ok else []
        total = kpis_frame([{**k, "capture_id": None} for k in kpis_all])
        total.write_parquet(out / "kpis_all.parquet")
        write_csv(out / "kpis_all.csv", total)
        frame = pl.DataFrame(captures, schema=CAPTURE_SCHEMA, orient="row")
        frame.write_parquet(out / "captures.parquet")
        write_csv(out / "captures.csv", frame)
        matches = [{**m, "captures": sorted(m["captures"])} for m in self.matches]
        model = report_model(captures, self.worst, kpis_all, matches, inputs_bad, seconds)
        (out / "report.md").write_text(report_markdown(model), encoding="utf-8")
        (out / "report.html").write_text(report_html(model), encoding="utf-8")
        return matches


def read_dataset(outdir: str | Path, name: str) -> pl.DataFrame:
    """calls, streams or kpis of a batch output folder, all captures, with the documented schema."""
    root = Path(outdir) / name
    if not any(root.glob("capture_id=*/part.parquet")):
        return pl.DataFrame(schema=DATASETS[name])
    frame = pl.read_parquet(root / "**" / "*.parquet", hive_partitioning=True, hive_schema={"capture_id": pl.Utf8})
    return frame.select(list(DATASETS[name]))


def _frame(rows: list[dict], schema: pl.Schema) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=schema)
    prepared = []
    for row in rows:
        r = {k: row.get(k) for k in schema}
        for key in CALL_JSON:
            if key in r and schema[key] == _S and not isinstance(r[key], (str, type(None))):
                r[key] = json.dumps(r[key], ensure_ascii=False)
        prepared.append(r)
    return pl.DataFrame(prepared, schema=schema, orient="row", strict=False)


def kpis_frame(rows: list[dict]) -> pl.DataFrame:
    return _frame(rows, KPI_SCHEMA)
