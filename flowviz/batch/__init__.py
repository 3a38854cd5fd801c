"""Batch analysis: many captures -> calls, streams and KPIs as one Parquet/CSV dataset plus a report
(docs/batch.md). The library side of `flowviz batch`, by part:

    inputs      capture ids          task        one capture in a worker (flowviz.analyze)
    engine      the process pool     results     a result enriched, its captures-table row
    conditions  --fail-on            report      worst calls, Markdown and HTML
    dataset     the output folder    schemas     the dataset's columns
"""

from flowviz.batch.conditions import FIELDS, Condition, match_conditions, parse_condition
from flowviz.batch.dataset import (KPI_CALL_KEYS, WORST_KEYS, Collector, check_outdir, kpis_frame, read_dataset,
                                   write_csv, write_partitions)
from flowviz.batch.engine import cores, run_tasks
from flowviz.batch.inputs import capture_ids
from flowviz.batch.report import report_html, report_markdown, report_model, worst_calls
from flowviz.batch.results import capture_row, enrich
from flowviz.batch.schemas import (CALL_SCHEMA, CAPTURE_SCHEMA, DATASETS, FAILED_STATES, KPI_SCHEMA, OUTPUTS,
                                   SEVERITIES, STREAM_SCHEMA)
from flowviz.batch.task import analyze_capture, failed_result
from flowviz.ingest.inputs import find_inputs

__all__ = ["CALL_SCHEMA", "CAPTURE_SCHEMA", "DATASETS", "FAILED_STATES", "FIELDS", "KPI_CALL_KEYS", "KPI_SCHEMA",
           "OUTPUTS", "SEVERITIES", "STREAM_SCHEMA", "WORST_KEYS", "Collector", "Condition", "analyze_capture",
           "capture_ids", "capture_row", "check_outdir", "cores", "enrich", "failed_result", "find_inputs",
           "kpis_frame", "match_conditions", "parse_condition", "read_dataset", "report_html", "report_markdown",
           "report_model", "run_tasks", "worst_calls", "write_csv", "write_partitions"]
