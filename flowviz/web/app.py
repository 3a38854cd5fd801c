"""App: create_app() builds the Dash app (upload, captures, call list, call page) over a data directory.

Callbacks are thin: they read the browser session's id from its cookie, load stored results by key and
format them. Decoding runs in a background worker (flowviz.web.analysis), never in a request.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html

from flowviz.errors import FlowvizError
from flowviz.settings import Settings
from flowviz.web import call_page, pages, stream_list
from flowviz.web.analysis import Analyzer, CallCache, capture_settings, diagnostics_fresh
from flowviz.web.exports import FORMATS
from flowviz.web.renderers import Renderers
from flowviz.web.routes import add_sample, csrf_token, delete_capture, figure_theme, register, session_id
from flowviz.web.security import TOKEN_META, Sessions, content_security_policy, load_secret, security_headers
from flowviz.web.store import Store
from flowviz.web.thresholds import DEFAULTS, ThresholdError, number, parse_thresholds

DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB
DEFAULT_QUOTA_BYTES = 20 << 30  # what one browser session may keep on the server
REPO = Path(__file__).resolve().parents[2]


def web_limits(settings: Settings, max_bytes: int) -> Settings:
    """A gzip upload may expand to four times the upload limit (a capture gzips 3-10 times), unless the
    server was given its own limit (FLOWVIZ_MAX_DECOMPRESSED or --limit decompressed=): past it the analysis
    stops with a one-line error, nothing more written (flowviz.ingest)."""
    if os.environ.get("FLOWVIZ_MAX_DECOMPRESSED") or settings.max_decompressed_bytes != Settings().max_decompressed_bytes:
        return settings
    return replace(settings, max_decompressed_bytes=min(settings.max_decompressed_bytes, 4 * max_bytes))


def default_data_dir() -> Path:
    return Path(os.environ.get("FLOWVIZ_DATA_DIR") or Path(tempfile.gettempdir()) / "flowviz-web")


def bundled_samples(folder: Path | None = None) -> dict[str, Path]:
    folder = folder or REPO / "sample_pcaps" / "lab"
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix in (".pcap", ".pcapng", ".gz")}


def create_app(data_dir: str | os.PathLike | None = None, *, max_upload_bytes: int | None = None,
               settings: Settings | None = None, samples_dir: str | os.PathLike | None = None,
               session_quota_bytes: int | None = None) -> dash.Dash:
    max_bytes = max_upload_bytes or int(os.environ.get("FLOWVIZ_MAX_UPLOAD_BYTES") or DEFAULT_MAX_BYTES)
    quota = session_quota_bytes or int(os.environ.get("FLOWVIZ_SESSION_QUOTA_BYTES") or DEFAULT_QUOTA_BYTES)
    settings = web_limits(settings or Settings(), max_bytes)
    store = Store(data_dir or default_data_dir())
    store.expire()
    analyzer = Analyzer(store, settings)
    analyzer.resume()  # what a stopped server left queued or running
    samples = bundled_samples(Path(samples_dir) if samples_dir else None)
    app = dash.Dash(__name__, title="flowviz", assets_folder=str(Path(__file__).with_name("assets")),
                    suppress_callback_exceptions=True, update_title=None)
    app.server.config["MAX_CONTENT_LENGTH"] = max_bytes + (1 << 20)
    calls = CallCache()
    headers: dict[str, str] = {}  # filled below, once every inline script (hashed into the CSP) is known
    renderers = Renderers()  # processes started on the first image download
    atexit.register(renderers.shutdown)
    register(app.server, store, analyzer, max_bytes, samples, calls, Sessions(load_secret(store.root)), headers,
             renderers, quota)
    app.flowviz = {"store": store, "analyzer": analyzer, "max_bytes": max_bytes, "calls": calls,
                   "renderers": renderers}
    app.layout = html.Div([
        dcc.Location(id="url"),
        html.Header([dcc.Link("flowviz", href="/", className="brand"),
                     html.Span("SIP/RTP capture analyzer", className="tagline"),
                     # a toggle button: its name stays "Dark theme", aria-pressed says whether it is on
                     html.Button("\u263e Dark theme", id="theme-toggle", className="theme-toggle", n_clicks=0,
                                 title="Switch between the light and the dark theme (remembered in this browser)",
                                 **{"aria-pressed": "false"})], className="top"),
        dcc.Store(id="theme"),  # set on each switch of the toggle: the figures on the page are drawn again
        html.Main(id="page", className="page"),
    ])
    _callbacks(app, store, settings, max_bytes, samples, calls)
    headers.update(security_headers(content_security_policy(app.csp_hashes())))
    plain_index = app.interpolate_index

    def interpolate_index(**parts):  # the page carries its session's token for assets/csrf.js
        token = f'<meta name="{TOKEN_META}" content="{csrf_token()}">'
        return plain_index(**{**parts, "metas": parts.get("metas", "") + token})

    app.interpolate_index = interpolate_index
    return app


def _callbacks(app: dash.Dash, store: Store, settings: Settings, max_bytes: int, samples: dict[str, Path],
               calls: CallCache) -> None:
    def details(cid: str, gid: str) -> dict:
        folder = store.capture_dir(session_id(), cid)
        if folder is None:
            raise FlowvizError("no such capture in this browser session")
        return calls.get((session_id(), cid), store.sources(folder), gid,
                         capture_settings(settings, store.meta(folder), folder),
                         store.thresholds(session_id()))

    app.clientside_callback(ClientsideFunction("flowviz", "toggleTheme"), Output("theme", "data"),
                            Output("theme-toggle", "aria-pressed"), Input("theme-toggle", "n_clicks"))

    # The ladder's page, its spacing, or the theme (the toggle switched it; the cookie already says which):
    # draw the shown page of the ladder again. Dash calls this only on a page that shows the ladder.
    @app.callback(Output("ladder", "figure"), Output("ladder-head", "children"), Output("ladder-page", "data"),
                  Output("ladder-range", "children"), Output("ladder-prev", "disabled"),
                  Output("ladder-next", "disabled"), Input("theme", "data"), Input("ladder-spacing", "value"),
                  Input("ladder-prev", "n_clicks"), Input("ladder-next", "n_clicks"), State("ladder-page", "data"),
                  State("url", "pathname"), prevent_initial_call=True)
    def ladder_view(_, spacing, __, ___, page, pathname):
        parts = (pathname or "").split("/")
        page = (page or 0) + {"ladder-prev": -1, "ladder-next": 1}.get(ctx.triggered_id, 0)
        try:
            ladder = details(parts[2], parts[4])["ladder"]
        except FlowvizError:  # the capture went away meanwhile: keep what is shown
            return (dash.no_update,) * 6
        figure, header, shown, n_pages = call_page.ladder_view(ladder, figure_theme(), page, spacing)
        page = min(max(page, 0), n_pages - 1)
        return figure, header, page, shown, page == 0, page >= n_pages - 1

    @app.callback(Output("media-plots-box", "children"), Input("media-request", "data"), State("url", "pathname"))
    def media_plots(_, pathname):
        parts = (pathname or "").split("/")
        try:
            return call_page.media_plots(details(parts[2], parts[4]), figure_theme())
        except FlowvizError:
            return None

    @app.callback(Output("waveform-box", "children"), Input("media-request", "data"), Input("theme", "data"),
                  State("url", "pathname"))
    def waveform(_, __, pathname):
        parts = (pathname or "").split("/")
        try:
            return call_page.waveform_box(details(parts[2], parts[4]), figure_theme())
        except FlowvizError:
            return None

    @app.callback(Output("media-plots", "figure"), Input("theme", "data"), State("url", "pathname"),
                  prevent_initial_call=True)
    def media_theme(_, pathname):
        parts = (pathname or "").split("/")
        try:
            return call_page.media_figure(details(parts[2], parts[4]), figure_theme())
        except FlowvizError:
            return dash.no_update

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(pathname: str | None):
        parts = [p for p in (pathname or "/").split("/") if p]
        if not parts:
            return pages.home(max_bytes, list(samples))
        if parts[0] == "capture" and (len(parts) in (2, 4) or parts[2:] == ["streams"]):
            folder = store.capture_dir(session_id(), parts[1])
            if folder is None:
                return _not_found("No such capture in this browser session.")
            overrides = store.thresholds(session_id())
            result = store.result(folder)
            fresh = diagnostics_fresh(store, folder, result)
            if len(parts) == 2:
                return pages.capture_page(parts[1], overrides, fresh)
            if parts[2] == "streams":
                if result is None:
                    return _not_found("This capture's analysis has not finished.")
                return stream_list.streams_layout(parts[1], store.meta(folder).get("name", ""), result)
            if parts[2] == "call":
                call = next((c for c in (result or {}).get("calls", []) if c["call_group_id"] == parts[3]), None)
                if call is None:  # unknown call, or the capture not analysed yet: nothing is decoded here
                    return _not_found("No such call in this capture (or its analysis has not finished).")
                if not fresh:  # thresholds changed since its findings were computed
                    app.flowviz["analyzer"].rediagnose(folder)
                try:
                    return call_page.call_layout(parts[1], store.meta(folder).get("name", ""),
                                                 details(parts[1], parts[3]), call.get("problems"),
                                                 fresh=fresh, overrides=overrides, theme=figure_theme())
                except FlowvizError as exc:
                    return _not_found(exc.message)
        return _not_found("No such page.")

    @app.callback(Output("captures-list", "children"), Output("captures-signature", "data"),
                  Output("captures-poll", "interval"), Input("captures-poll", "n_intervals"),
                  Input("refresh-captures", "n_clicks"), State("captures-signature", "data"))
    def captures(_, __, signature):
        found = store.captures(session_id())
        busy = any(c.get("state") in ("queued", "running") for c in found)
        interval = 700 if busy else 2000  # quick while something runs; uploads show up within 2 s
        current = repr([(c["id"], c.get("state"), c.get("stage"), c.get("fraction")) for c in found])
        if current == signature:
            return dash.no_update, dash.no_update, interval
        return pages.captures_list(found), current, interval

    @app.callback(Output("sample-status", "children"), Output("refresh-captures", "n_clicks"),
                  Input({"type": "sample", "name": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick_sample(clicks):
        if not ctx.triggered_id or not any(clicks):
            return dash.no_update, dash.no_update
        name = ctx.triggered_id["name"]
        add_sample(store, app.flowviz["analyzer"], session_id(), name, samples[name])
        return f"{name} added.", sum(c or 0 for c in clicks)  # lists it at once

    @app.callback(Output("sample-status", "children", allow_duplicate=True),
                  Input({"type": "delete", "id": ALL}, "n_clicks"), prevent_initial_call=True)
    def delete(clicks):
        if not ctx.triggered_id or not any(clicks):
            return dash.no_update
        if not delete_capture(store, app.flowviz["analyzer"], session_id(), ctx.triggered_id["id"]):
            return "No such capture in this browser session (already deleted?)."
        return "Capture deleted."

    @app.callback(Output("sample-status", "children", allow_duplicate=True),
                  Input({"type": "cancel", "id": ALL}, "n_clicks"), prevent_initial_call=True)
    def cancel(clicks):
        if not ctx.triggered_id or not any(clicks):
            return dash.no_update
        folder = store.capture_dir(session_id(), ctx.triggered_id["id"])
        if folder is None or not app.flowviz["analyzer"].cancel(folder):
            return "Nothing to cancel: the analysis had finished."
        return "Analysis cancelled."

    @app.callback(Output("sample-status", "children", allow_duplicate=True),
                  Output("refresh-captures", "n_clicks", allow_duplicate=True),
                  Input({"type": "retry", "id": ALL}, "n_clicks"), prevent_initial_call=True)
    def retry(clicks):
        if not ctx.triggered_id or not any(clicks):
            return dash.no_update, dash.no_update
        if not retry_capture(ctx.triggered_id["id"]):
            return "Nothing to run again: the analysis is queued, running or done.", dash.no_update
        return "Analysis queued again.", sum(c or 0 for c in clicks)

    @app.callback(Output("run-again-status", "children"), Output("capture-poll", "disabled", allow_duplicate=True),
                  Input("run-again", "n_clicks"), State("url", "pathname"), prevent_initial_call=True)
    def run_again(clicks, pathname):
        if not clicks:
            return dash.no_update, dash.no_update
        if not retry_capture((pathname or "").split("/")[2]):
            return "Nothing to run again: the analysis is queued, running or done.", dash.no_update
        return "Analysis queued again.", False  # the page polls its progress

    def retry_capture(cid: str) -> bool:
        folder = store.capture_dir(session_id(), cid)
        if folder is None or not app.flowviz["analyzer"].retry(folder):
            return False
        calls.forget((session_id(), cid))
        return True

    @app.callback(Output("capture-body", "children"), Output("capture-poll", "disabled"),
                  Input("capture-poll", "n_intervals"), State("url", "pathname"))
    def capture_body(_, pathname):
        cid = (pathname or "").split("/")[2] if (pathname or "").startswith("/capture/") else ""
        folder = store.capture_dir(session_id(), cid)
        if folder is None:
            return html.P("No such capture in this browser session.", className="error"), True
        meta = store.meta(folder)
        result = store.result(folder) if meta.get("state") == "done" else None
        finished = meta.get("state") in ("done", "error", "cancelled")
        if result and result["calls"]:  # the next click is likely a call: have its capture ready by then
            calls.warm((session_id(), cid), store.sources(folder), result["calls"][0]["call_group_id"],
                       capture_settings(settings, meta, folder), store.thresholds(session_id()))
        return pages.capture_body(cid, meta, result), finished

    @app.callback(Output("calls-table", "data"), Output("calls-table", "page_count"),
                  Output("calls-table", "page_current"), Input("state-filter", "value"), Input("call-search", "value"),
                  Input("method-filter", "value"), Input("code-filter", "value"),
                  Input("calls-table", "page_current"), Input("calls-table", "sort_by"),
                  Input("diagnostics-version", "data"), State("url", "pathname"))
    def calls_table(state, search, method, code, page, sort_by, _, pathname):
        cid = pathname.split("/")[2]
        folder = store.capture_dir(session_id(), cid)
        result = store.result(folder) if folder else None
        if result is None:
            return [], 1, 0
        if ctx.triggered_id in ("state-filter", "call-search", "method-filter", "code-filter"):
            page = 0
        rows, n_pages = pages.call_page_rows(cid, result["calls"], state, search, sort_by, page,
                                             problems_fresh=diagnostics_fresh(store, folder, result),
                                             method=method or "", code=code or "")
        return rows, n_pages, min(page or 0, n_pages - 1)

    @app.callback(Output("streams-table", "data"), Output("streams-table", "page_count"),
                  Output("streams-table", "page_current"), Output("streams-figure", "figure"),
                  Output("streams-status", "children"), Input("stream-mos-below", "value"),
                  Input("stream-loss-above", "value"), Input("stream-unbound", "value"),
                  Input("stream-search", "value"),
                  Input("streams-table", "page_current"), Input("streams-table", "sort_by"),
                  Input("theme", "data"), State("url", "pathname"))  # theme: the toggle switched, redraw the figure
    def streams_table(mos_below, loss_above, unbound, search, page, sort_by, _, pathname):
        from flowviz.figures.streams import create_streams_overview

        cid = pathname.split("/")[2]
        folder = store.capture_dir(session_id(), cid)
        result = store.result(folder) if folder else None
        if result is None:
            return [], 1, 0, dash.no_update, ""
        try:
            wanted = stream_list.parse_filter(mos_below, loss_above, bool(unbound), search)
        except stream_list.FilterError as exc:  # the table keeps what it showed until the field is corrected
            return (dash.no_update, dash.no_update, dash.no_update, dash.no_update,
                    html.Span(exc.message, className="error", role="alert"))
        if ctx.triggered_id in ("stream-mos-below", "stream-loss-above", "stream-unbound", "stream-search"):
            page = 0
        rows = stream_list.filtered_rows(cid, result.get("streams") or [], result["calls"], wanted)
        shown, n_pages, page = stream_list.stream_page_rows(rows, sort_by, page)
        figure = (dash.no_update if ctx.triggered_id == "streams-table"
                  else create_streams_overview(rows, theme=figure_theme()))
        status = stream_list.status_text(len(rows), len(result.get("streams") or []), wanted)
        return shown, n_pages, page, figure, status

    @app.callback(Output("url", "pathname", allow_duplicate=True), Input("streams-figure", "clickData"),
                  prevent_initial_call=True)
    def open_stream_call(click):
        href = ((click or {}).get("points") or [{}])[0].get("customdata", [""])[0]
        return href if isinstance(href, str) and href.startswith("/capture/") else dash.no_update

    @app.callback(Output("thresholds-status", "children"), Output("thresholds-badge", "children"),
                  Output("thresholds-badge", "className"), Output({"type": "threshold", "name": ALL}, "value"),
                  Output("diagnostics-version", "data", allow_duplicate=True),
                  Output("diagnostics-poll", "disabled", allow_duplicate=True),
                  Input("thresholds-apply", "n_clicks"), Input("thresholds-reset", "n_clicks"),
                  State({"type": "threshold", "name": ALL}, "value"), State({"type": "threshold", "name": ALL}, "id"),
                  prevent_initial_call=True)
    def apply_thresholds(_, __, values, ids):
        if ctx.triggered_id == "thresholds-reset":
            overrides = {}
        else:
            try:
                overrides = parse_thresholds({i["name"]: v for i, v in zip(ids, values)})
            except ThresholdError as exc:  # nothing changes: the fields keep what was typed, to be corrected
                return (html.Span(exc.message, className="error", role="alert"), dash.no_update, dash.no_update,
                        [dash.no_update] * len(ids), dash.no_update, dash.no_update)
        sid = session_id()
        store.set_thresholds(sid, overrides)
        for capture in store.captures(sid):  # every capture of the session, so each is ready when opened
            folder = store.capture_dir(sid, capture["id"])
            if folder is not None and capture.get("state") == "done":
                app.flowviz["analyzer"].rediagnose(folder)
        shown = [number(overrides.get(i["name"], DEFAULTS[i["name"]])) for i in ids]
        message = (f"Applied: {len(overrides)} threshold(s) differ from the defaults." if overrides
                   else "Defaults in effect.")
        # version None: the call list marks its findings as being re-checked until the poll sees them fresh
        return (message, pages.thresholds_badge(overrides), "changed" if overrides else "hint", shown, None, False)

    @app.callback(Output("diagnostics-version", "data"), Output("diagnostics-poll", "disabled"),
                  Output("diagnostics-note", "children"), Input("diagnostics-poll", "n_intervals"),
                  State("diagnostics-version", "data"), State("url", "pathname"))
    def diagnostics_state(_, version, pathname):
        cid = (pathname or "").split("/")[2] if (pathname or "").startswith("/capture/") else ""
        folder = store.capture_dir(session_id(), cid)
        meta = store.meta(folder) if folder is not None else {}
        if meta.get("state") != "done":  # still being analysed (poll on), or gone or failed (stop)
            return dash.no_update, meta.get("state") not in ("queued", "running"), ""
        result = store.result(folder)
        overrides = store.thresholds(session_id())
        if diagnostics_fresh(store, folder, result):
            current = pages.diagnostics_version(overrides)
            return (dash.no_update if current == version else current), True, ""
        if meta.get("diagnostics_error") and meta.get("diagnostics_error_for") == overrides:
            return dash.no_update, True, html.Span(f"The diagnostics rules could not run again: "
                                                   f"{meta['diagnostics_error']}", className="error")
        app.flowviz["analyzer"].rediagnose(folder)
        return dash.no_update, False, "Running the diagnostics rules again with the new thresholds..."

    @app.callback(Output("call-diagnostics", "children"), Output("call-diagnostics-poll", "disabled"),
                  Input("call-diagnostics-poll", "n_intervals"), State("url", "pathname"), prevent_initial_call=True)
    def call_diagnostics(_, pathname):
        parts = (pathname or "").split("/")
        folder = store.capture_dir(session_id(), parts[2] if len(parts) > 4 else "")
        if folder is None:
            return dash.no_update, True
        result = store.result(folder)
        if not diagnostics_fresh(store, folder, result):
            meta, overrides = store.meta(folder), store.thresholds(session_id())
            if meta.get("diagnostics_error") and meta.get("diagnostics_error_for") == overrides:
                return call_page.problems_section([], False, meta["diagnostics_error"]), True
            app.flowviz["analyzer"].rediagnose(folder)
            return dash.no_update, False
        call = next((c for c in result["calls"] if c["call_group_id"] == parts[4]), {})
        return call_page.problems_section(call.get("problems") or [], True), True

    @app.callback([Output(f"export-{fmt}", "href") for fmt in FORMATS], Input("redact", "value"),
                  State("url", "pathname"), prevent_initial_call=True)
    def export_links(redact, pathname):
        base = f"{pathname}/export/"
        query = "?redact=1" if redact else ""
        return [base + fmt + query for fmt in FORMATS]

    @app.callback(Output("messages-table", "data"), Output("message-search-status", "children"),
                  Input("message-search", "value"), State("url", "pathname"), prevent_initial_call=True)
    def search_messages(needle, pathname):
        parts = pathname.split("/")
        try:
            arrows = details(parts[2], parts[4])["ladder"].arrows
        except FlowvizError as exc:
            return dash.no_update, exc.message
        rows = call_page.message_rows(arrows, needle)
        if not (needle or "").strip():
            return rows, f"{len(rows)} messages"
        return rows, f"{len(rows)} of {len(arrows)} messages hold \"{needle.strip()}\""

    @app.callback(Output("raw-message", "children"), Output("ladder", "figure", allow_duplicate=True),
                  Input("ladder", "clickData"), State("url", "pathname"), prevent_initial_call=True)
    def show_raw(click, pathname):
        point = (click or {}).get("points", [{}])[0]
        seq = point.get("customdata")
        if not isinstance(seq, int) or seq < 0:
            return dash.no_update, dash.no_update
        parts = pathname.split("/")
        try:
            raw = call_page.raw_message(details(parts[2], parts[4]), seq)
        except FlowvizError as exc:
            return exc.message, dash.no_update
        band = dash.Patch()  # only the highlight goes to the browser, not the figure again
        band["layout"]["shapes"] = call_page.highlight(point)
        return raw, band


def _not_found(message: str) -> html.Div:
    return html.Div([html.H1("Not found"), html.P(message, className="error"), dcc.Link("< all captures", href="/")])
