"""Exports of a ladder: text (txt, Mermaid, PlantUML), images (SVG, PNG, PDF) and offline HTML."""
