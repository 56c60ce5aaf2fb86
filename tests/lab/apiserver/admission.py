"""PodSecurity admission (pod-security-admission `policy/*.go`), the checks a debug container can trip.

The namespace label `pod-security.kubernetes.io/enforce` picks the level; the WHOLE pod (regular, init and
ephemeral containers) is evaluated, baseline checks first then restricted ones, each group ordered by check ID;
restricted's capability and seccomp checks override baseline's. `warn` violations become a Warning header.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from .status import forbidden

# Baseline allows only these added capabilities (capabilities_baseline.go).
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                 "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
LABEL = "pod-security.kubernetes.io/"


def _containers(spec: dict):
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            yield c


def _plural(names: List[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"container {quoted}" if len(names) == 1 else f"containers {quoted}"


def _quote(items) -> str:
    return ", ".join(f'"{x}"' for x in items)


def violations(pod: dict, level: str) -> List[str]:
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    out: List[Tuple[str, str]] = []  # (check id, text)

    def sc(c):
        return c.get("securityContext") or {}

    if level in ("baseline", "restricted"):
        if level == "baseline":
            bad, caps = [], set()
            for c in _containers(spec):
                added = {x for x in ((sc(c).get("capabilities") or {}).get("add") or []) if x not in BASELINE_CAPS}
                if added:
                    bad.append(c["name"])
                    caps |= added
            if bad:
                out.append(("capabilities_baseline", f"non-default capabilities ({_plural(bad)} must not include "
                                                     f"{_quote(sorted(caps))} in securityContext.capabilities.add)"))
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            flags = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
            out.append(("hostNamespaces", f"host namespaces ({', '.join(flags)})"))
        priv = [c["name"] for c in _containers(spec) if sc(c).get("privileged")]
        if priv:
            out.append(("privileged", f"privileged ({_plural(priv)} must not set securityContext.privileged=true)"))
    if level == "restricted":
        ape = [c["name"] for c in _containers(spec) if sc(c).get("allowPrivilegeEscalation") is not False]
        if ape:
            out.append(("allowPrivilegeEscalation", f"allowPrivilegeEscalation != false ({_plural(ape)} must set "
                                                     "securityContext.allowPrivilegeEscalation=false)"))
        no_drop, bad_add, caps = [], [], set()
        for c in _containers(spec):
            cp = sc(c).get("capabilities") or {}
            if "ALL" not in (cp.get("drop") or []):
                no_drop.append(c["name"])
            added = {x for x in cp.get("add") or [] if x != "NET_BIND_SERVICE"}
            if added:
                bad_add.append(c["name"])
                caps |= added
        if no_drop or bad_add:
            parts = []
            if no_drop:
                parts.append(f'{_plural(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
            if bad_add:
                parts.append(f"{_plural(bad_add)} must not include {_quote(sorted(caps))} in "
                             "securityContext.capabilities.add")
            out.append(("capabilities_restricted", f"unrestricted capabilities ({'; '.join(parts)})"))
        if psc.get("runAsNonRoot") is not True:
            bad = [c["name"] for c in _containers(spec) if sc(c).get("runAsNonRoot") is not True]
            if bad:
                out.append(("runAsNonRoot", f"runAsNonRoot != true (pod or {_plural(bad)} must set "
                                            "securityContext.runAsNonRoot=true)"))
        else:
            bad = [c["name"] for c in _containers(spec) if sc(c).get("runAsNonRoot") is False]
            if bad:
                out.append(("runAsNonRoot", f"runAsNonRoot != true ({_plural(bad)} must not set "
                                            "securityContext.runAsNonRoot=false)"))
        root = [c["name"] for c in _containers(spec) if sc(c).get("runAsUser") == 0]
        if root or psc.get("runAsUser") == 0:
            who = "pod" if psc.get("runAsUser") == 0 and not root else _plural(root)
            out.append(("runAsUser", f"runAsUser=0 ({who} must not set runAsUser=0)"))
        pod_ok = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
        bad = [c["name"] for c in _containers(spec)
               if (sc(c).get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost")
               and not (pod_ok and "seccompProfile" not in sc(c))]
        if bad:
            who = _plural(bad) if pod_ok else f"pod or {_plural(bad)}"
            out.append(("seccompProfile_restricted", f'seccompProfile ({who} must set securityContext.seccompProfile'
                                                     '.type to "RuntimeDefault" or "Localhost")'))
    baseline_ids = {"capabilities_baseline", "hostNamespaces", "privileged"}
    ordered = sorted((c for c in out if c[0] in baseline_ids)) + sorted((c for c in out if c[0] not in baseline_ids))
    return [text for _, text in ordered]


def _level(labels: dict, mode: str) -> Optional[Tuple[str, str]]:
    level = labels.get(LABEL + mode)
    if level not in ("baseline", "restricted"):
        return None
    return level, labels.get(LABEL + mode + "-version", "latest")


def admit_pod(namespace: dict, pod: dict, enabled: bool = True) -> List[str]:
    """Raise the 403 for `enforce`; return Warning header values for `warn`. `enabled`: the PodSecurity admission
    plugin runs (on by default from 1.23, `versions.py`); without it the labels mean nothing."""
    if not enabled:
        return []
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    name = pod["metadata"]["name"]
    enforce = _level(labels, "enforce")
    if enforce:
        reasons = violations(pod, enforce[0])
        if reasons:
            raise forbidden("pods", name, f'violates PodSecurity "{enforce[0]}:{enforce[1]}": ' + ", ".join(reasons))
    warnings = []
    warn = _level(labels, "warn")
    if warn:
        reasons = violations(pod, warn[0])
        if reasons:
            text = f'would violate PodSecurity "{warn[0]}:{warn[1]}": {", ".join(reasons)}'
            # A Warning header's text is an RFC 7230 quoted-string.
            warnings.append('299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return warnings

