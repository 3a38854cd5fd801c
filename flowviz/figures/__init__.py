"""Plotly figure factories: create_<name>(frame, *, theme) -> go.Figure."""
