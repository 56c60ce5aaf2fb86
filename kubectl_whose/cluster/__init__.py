"""I/O with the Kubernetes API: kubeconfig, the ephemeral debug container, the exec stream.

The only layer that imports the `kubernetes` client, and only inside functions, so that
`--help` and `analyze` never pay for it.
"""
