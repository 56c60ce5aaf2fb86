"""The native stream engine: `_engine.c` and its headers, behind the same interface."""
