"""`flowviz batch`: many captures in worker processes or on a Dask cluster -> one Parquet/CSV dataset and a report
(docs/batch.md, docs/scale.md)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import click

from flowviz import batch
from flowviz.batch import engine
from flowviz.cli.common import Context
from flowviz.errors import FlowvizError


class ProblemsFound(FlowvizError):
    exit_code = 1


def _progress(done: int, total: int, failed: int, last: str) -> None:
    text = f"[{done}/{total}] {done * 100 // max(total, 1):3d}%  {failed} failed  {last}"
    click.echo("\r" + f"{text[:78]:<78}", nl=False, err=True)


def _about(path: str, message: str) -> str:
    """One line naming the capture once."""
    return " ".join((message if path in message else f"{path}: {message}").split())


def run_batch(files: list[Path], ids: list[str], obj: Context, workers: int, tty: bool,
              task=None, on_result=None, client=None) -> list:
    """The engine over every file (on the cluster of client, a distributed.Client, when given), saying on
    stderr what each capture gave (warnings, error) and, on a terminal, the progress; what
    on_result(result) returns (default: the result), in input order."""
    state = {"done": 0, "failed": 0}

    def done(res: dict):
        kept = on_result(res) if on_result else res
        state["done"] += 1
        if tty:
            click.echo("\r" + " " * 78 + "\r", nl=False, err=True)
        for warning in res["warnings"]:
            click.echo(f"flowviz: warning: {_about(res['capture'], warning)}", err=True)
        if not res["ok"]:
            state["failed"] += 1
            click.echo(f"flowviz: error: {_about(res['capture'], res['error'] or '')}", err=True)
        if tty:
            _progress(state["done"], len(files), state["failed"], res["capture_id"])
        return kept

    if tty:
        _progress(0, len(files), 0, "")
    results = batch.run_tasks(files, ids, obj.settings, use_cache=obj.use_cache, workers=workers, task=task,
                              on_result=done, client=client)
    if tty:
        click.echo("\r" + " " * 78 + "\r", nl=False, err=True)
    return results


def _sets_per_folder(files: list[Path]) -> tuple[list, list[str]]:
    """The files grouped by folder: one capture set per folder of several captures, with the folder's id."""
    folders: dict[Path, list[Path]] = {}
    for path in files:
        folders.setdefault(path.parent, []).append(path)
    items = [group if len(group) > 1 else group[0] for group in folders.values()]
    ids = batch.capture_ids([folder if len(group) > 1 else group[0] for folder, group in folders.items()])
    return items, ids


def _connect(address: str):
    """The cluster's client, after one line on stderr saying what it is and where its dashboard is."""
    if not os.environ.get("FLOWVIZ_DEBUG"):  # the client's own logs (tracebacks on a lost scheduler): we say it
        import distributed  # noqa: F401  (it sets the levels of its loggers on import: set them after)

        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] == "distributed":
                logging.getLogger(name).setLevel(logging.CRITICAL)
    client = engine.connect(address)
    about = engine.cluster_summary(client)
    dashboard = about["dashboard"] or "none (install bokeh where the scheduler runs)"
    click.echo(f"flowviz: Dask scheduler {about['scheduler']}: {about['workers']} workers, {about['threads']} "
               f"threads; dashboard {dashboard}", err=True)
    return client


@click.command("batch")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, metavar="OUTDIR",
              help="Folder for the dataset and the report (must be new or empty, unless --force).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, metavar="N",
              help="Worker processes (default: one per core; not used with --scheduler).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run each capture as a task on this Dask scheduler's workers, which must read the captures at "
                   "the same paths (docs/scale.md). Default: worker processes on this machine.")
@click.option("--fail-on", "fail_on", multiple=True, metavar="COND",
              help="Exit 1 when a call or stream matches, e.g. mos<3.5, state=rejected, severity>=warning "
                   "(repeatable; fields: mos, lost_pct, max_jitter_ms, state, severity, rule, status, srd_ms, "
                   "setup_ms, duration_s; see docs/batch.md).")
@click.option("--force", is_flag=True, help="Replace the outputs of an earlier batch in OUTDIR.")
@click.option("--set-per-folder", is_flag=True,
              help="The captures of each folder are one capture set (the same calls captured at several points, "
                   "merged on one timeline as with --merge); a folder with one capture is that capture.")
@click.pass_obj
def batch_command(obj: Context, paths: tuple[str, ...], outdir: str, workers: int | None, fail_on: tuple[str, ...],
                  force: bool, set_per_folder: bool, scheduler: str | None) -> None:
    """Analyse many captures: calls, RTP streams and KPIs per capture and across all, written to
    OUTDIR as a Parquet dataset partitioned by capture plus CSV, and a report (report.md, report.html).

    PATHS are files, folders (searched for capture files) and globs. A capture that cannot be read
    is reported and the others go on. Exit code: 0 fine, 1 a --fail-on condition matched, 2 no
    input usable. Columns: docs/batch.md.
    """
    conditions = [batch.parse_condition(text) for text in fail_on]
    if "://" in outdir:  # the dataset is written by this process, through the file system
        raise FlowvizError(f"-o {outdir}: OUTDIR must be a folder (a shared one is fine); URLs are not supported, "
                           "write to a folder and copy it")
    out = Path(outdir)
    batch.check_outdir(out, force)
    started = time.perf_counter()
    files, bad_inputs = batch.find_inputs(paths)
    for name, why in bad_inputs:
        click.echo(f"flowviz: error: {name}: {why}", err=True)
    if not files:
        raise FlowvizError("no capture to analyse in " + " ".join(paths))
    collector = batch.Collector(out, conditions)
    names = batch.capture_ids(files)
    if set_per_folder:
        files, names = _sets_per_folder(files)
    client = _connect(scheduler) if scheduler else None
    try:
        captures = run_batch(files, names, obj, workers or batch.cores(), sys.stderr.isatty(),
                             on_result=collector.add, client=client)
    finally:
        if client is not None:
            client.close()
    seconds = time.perf_counter() - started
    matches = collector.finish(captures, bad_inputs, seconds)
    ok = [c for c in captures if c["ok"]]
    click.echo(f"flowviz batch: {len(captures)} captures ({len(ok)} ok, {len(captures) - len(ok)} failed), "
               f"{sum(c['calls'] for c in ok)} calls, {sum(c['streams'] for c in ok)} streams in {seconds:.1f} s -> "
               f"{out / 'report.md'}", err=True)
    if not ok:
        raise FlowvizError(f"none of the {len(captures)} captures could be analysed (see above)")
    matched = [m for m in matches if m["matched"]]
    if matched:
        raise ProblemsFound("--fail-on matched: " + "; ".join(f"{m['condition']} ({m['matched']} {m['table']})"
                                                             for m in matched))
