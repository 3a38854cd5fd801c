"""`flowviz serve`: the web app (upload captures, browse calls, open one) on waitress, a production WSGI server;
`--dev` for werkzeug's development server.

One process with several threads, not several processes: the app keeps its analysis queue in the process
(flowviz.web.analysis.Analyzer), and two processes would each run their own queue over the same data folder.
"""

from __future__ import annotations

import signal

import click

from flowviz.cli.common import Context
from flowviz.errors import FlowvizError

# The X-Forwarded-* headers waitress takes from a trusted reverse proxy (docs/scale.md).
PROXY_HEADERS = "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(0, 65535), help="Port; 0: any free one.")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="Where uploads and results are kept (default: $FLOWVIZ_DATA_DIR or <tmp>/flowviz-web).")
@click.option("--max-upload", "max_upload_mib", default=2048, show_default=True, type=click.IntRange(1),
              metavar="MiB", help="Largest capture accepted per file.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Requests served at once (waitress worker threads).")
@click.option("--trusted-proxy", default=None, metavar="ADDRESS",
              help="The reverse proxy's address (e.g. 127.0.0.1): its X-Forwarded-For/Host/Proto/Port headers are "
                   "believed; anyone else's are dropped. See docs/scale.md.")
@click.option("--dev", is_flag=True, help="Werkzeug's development server instead of waitress.")
@click.pass_obj
def serve(obj: Context, host: str, port: int, data_dir: str | None, max_upload_mib: int, threads: int,
          trusted_proxy: str | None, dev: bool) -> None:
    """Serve the web UI: upload captures, see their calls, open one. See docs/web.md and docs/scale.md."""
    from flowviz.web import create_app

    if trusted_proxy is not None:
        _check_address(trusted_proxy)
    app = create_app(data_dir, max_upload_bytes=max_upload_mib << 20, settings=obj.settings)
    try:
        server, url, what = (_werkzeug if dev else _waitress)(app.server, host, port, threads, trusted_proxy)
    except OSError as exc:
        app.flowviz["analyzer"].shutdown()
        raise FlowvizError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # SIGTERM (a service manager stopping us) ends like Ctrl+C: through the finally below
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    click.echo(f"flowviz: serving on {url} with {what} (Ctrl+C to stop)", err=True)
    try:
        server.serve()  # returns on Ctrl+C or SIGTERM (waitress), or raises KeyboardInterrupt (werkzeug)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.flowviz["analyzer"].shutdown()
        click.echo("flowviz: stopped", err=True)


def _check_address(text: str) -> None:
    """waitress compares the proxy's address with each connection's as text: a typo would trust nobody."""
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise FlowvizError(f"--trusted-proxy {text!r}: not an IP address; give the address the reverse proxy "
                           "connects from, e.g. 127.0.0.1") from None


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


class _Server:
    def __init__(self, serve, close):
        self.serve, self.close = serve, close


def _waitress(wsgi, host: str, port: int, threads: int, trusted_proxy: str | None):
    from waitress.server import create_server

    proxy = {"trusted_proxy": trusted_proxy, "trusted_proxy_headers": PROXY_HEADERS,
             "clear_untrusted_proxy_headers": True} if trusted_proxy else {}
    # waitress reads a whole request body before the app sees it: a body larger than the app accepts (the
    # upload limit plus room for the form) is refused from its Content-Length, never spooled to disk
    server = create_server(wsgi, host=host, port=port, threads=threads, ident="waitress",
                           max_request_body_size=wsgi.config["MAX_CONTENT_LENGTH"], **proxy)
    listen = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
    urls = " and ".join(f"http://{_bracketed(h)}:{p}/" for h, p in listen)
    return _Server(server.run, server.close), urls, f"waitress ({threads} threads)"


def _werkzeug(wsgi, host: str, port: int, threads: int, trusted_proxy: str | None):
    from werkzeug.serving import make_server

    if trusted_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        wsgi = ProxyFix(wsgi, x_for=1, x_proto=1, x_host=1, x_port=1)
    server = make_server(host, port, wsgi, threaded=True)
    return (_Server(server.serve_forever, server.server_close), f"http://{_bracketed(host)}:{server.server_port}/",
            "werkzeug's development server")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
