"""Pure analysis: bytes or text in, dataclasses out. Never imports the Kubernetes client."""
