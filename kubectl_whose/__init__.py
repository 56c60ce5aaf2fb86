"""kubectl-whose: whose packet is it? Capture and explain a Kubernetes pod's traffic."""

__version__ = "0.1.0"
