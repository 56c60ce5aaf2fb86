"""Rendering of analysis results: table, wide, json, yaml, live. No analysis logic here."""
