"""The reference stream engine, in pure Python (the native one transcribes it)."""
