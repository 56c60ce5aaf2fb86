"""The generated `kubernetes` client, built from the kubectl-style resolution: for kubeconfigs whose credentials
the light transport (`cluster.rest`) delegates (`exec` plugins, `auth-provider`, basic auth), and for callers that
want the generated API objects. Slow to import (~0.4 s), so only imported when needed."""
from __future__ import annotations

from kubectl_whose.cluster.kubeconfig import ResolvedConfig
from kubectl_whose.errors import ExitCode, WhoseError


def build_api_client(resolved: ResolvedConfig):
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    cfg = client.Configuration()
    try:
        KubeConfigLoader(config_dict=resolved.merged, active_context=resolved.context).load_and_set(cfg)
    except ConfigException as e:
        raise WhoseError(f"kubeconfig context {resolved.context!r} cannot be used ({e})", ExitCode.CONFIG) from None
    # urllib3 retries hide a dead server for ~10 s; kubectl fails at once.
    cfg.retries = False
    return client.ApiClient(cfg)
