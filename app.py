"""flowviz web app: `python app.py` serves it on http://127.0.0.1:8050 (see docs/web.md)."""

from flowviz.web import create_app

app = create_app()
server = app.server

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8050)
