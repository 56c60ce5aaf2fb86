"""The lab: a Kubernetes API server over real network namespaces (issue 3). See README.md here.

Test and demo infrastructure only; the plugin never imports it.
"""
