"""Web UI: upload captures, browse their calls, open one (docs/web.md). `create_app()` builds the Dash app.

Imported lazily, so the analysis worker process (flowviz.web.worker) does not load Dash.
"""

__all__ = ["create_app", "bundled_samples", "default_data_dir"]


def __getattr__(name: str):
    if name in __all__:
        from flowviz.web import app

        return getattr(app, name)
    raise AttributeError(f"module 'flowviz.web' has no attribute {name!r}")
