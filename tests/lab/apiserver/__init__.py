"""A Kubernetes API server for the lab: the REST + exec WebSocket subset kubectl and the plugin use.

Modules: `http` (transport, auth, routing), `discovery`, `store` (objects, resourceVersion, watch),
`patch` (strategic merge / JSON merge / JSON patch), `ephemeral` (the subresource's defaulting and validation),
`admission` (PodSecurity), `rbac` (policy, SelfSubjectAccessReview), `websocket` (RFC 6455), `execstream`
(exec channels), `kubelet` (pods as real namespaces and processes), `tables` (kubectl's Table output).
"""
