"""`flowviz serve`: the web app (upload captures, browse calls, open one) on a local address."""

from __future__ import annotations

import click

from flowviz.cli.common import Context
from flowviz.errors import FlowvizError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(0, 65535), help="Port; 0: any free one.")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="Where uploads and results are kept (default: $FLOWVIZ_DATA_DIR or <tmp>/flowviz-web).")
@click.option("--max-upload", "max_upload_mib", default=2048, show_default=True, type=click.IntRange(1),
              metavar="MiB", help="Largest capture accepted per file.")
@click.pass_obj
def serve(obj: Context, host: str, port: int, data_dir: str | None, max_upload_mib: int) -> None:
    """Serve the web UI: upload captures, see their calls, open one. See docs/web.md."""
    from werkzeug.serving import make_server

    from flowviz.web import create_app

    app = create_app(data_dir, max_upload_bytes=max_upload_mib << 20, settings=obj.settings)
    try:
        server = make_server(host, port, app.server, threaded=True)
    except OSError as exc:
        raise FlowvizError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"flowviz: serving on http://{host}:{server.server_port}/ (Ctrl+C to stop)", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.flowviz["analyzer"].shutdown()
