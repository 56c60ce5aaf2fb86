"""What the API server's decoder does with fields it does not know, and with values of the wrong JSON type.

- An unknown field is dropped. `fieldValidation` says what else happens: Ignore (nothing), Warn (the default: a
  `Warning: unknown field "spec.foo"` header), Strict (400, `strict decoding error: unknown field "spec.foo"`).
- A value of the wrong type is always a 400: `json: cannot unmarshal string into Go struct field
  PodSpec.spec.hostNetwork of type bool`.

Checked for the structs the lab's clients write (Pod, ObjectMeta, PodSpec, Container, EphemeralContainer), with
their complete field lists as of Kubernetes 1.34; what lies below them (securityContext, probes, volumes...) is
kept as sent.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .status import ApiError

S, I, B, L, M, O = "string", "int64", "bool", "list", "map", "object"

OBJECT_META = {"name": S, "generateName": S, "namespace": S, "selfLink": S, "uid": S, "resourceVersion": S,
               "generation": I, "creationTimestamp": S, "deletionTimestamp": S, "deletionGracePeriodSeconds": I,
               "labels": M, "annotations": M, "ownerReferences": L, "finalizers": L, "managedFields": L}
CONTAINER = {"name": S, "image": S, "command": L, "args": L, "workingDir": S, "ports": L, "envFrom": L, "env": L,
             "resources": O, "resizePolicy": L, "restartPolicy": S, "restartPolicyRules": L, "volumeMounts": L,
             "volumeDevices": L, "livenessProbe": O, "readinessProbe": O, "startupProbe": O, "lifecycle": O,
             "terminationMessagePath": S, "terminationMessagePolicy": S, "imagePullPolicy": S,
             "securityContext": O, "stdin": B, "stdinOnce": B, "tty": B}
EPHEMERAL_CONTAINER = dict(CONTAINER, targetContainerName=S)
POD_SPEC = {"volumes": L, "initContainers": L, "containers": L, "ephemeralContainers": L, "restartPolicy": S,
            "terminationGracePeriodSeconds": I, "activeDeadlineSeconds": I, "dnsPolicy": S, "nodeSelector": M,
            "serviceAccountName": S, "serviceAccount": S, "automountServiceAccountToken": B, "nodeName": S,
            "hostNetwork": B, "hostPID": B, "hostIPC": B, "shareProcessNamespace": B, "securityContext": O,
            "imagePullSecrets": L, "hostname": S, "subdomain": S, "affinity": O, "schedulerName": S,
            "tolerations": L, "hostAliases": L, "priorityClassName": S, "priority": I, "dnsConfig": O,
            "readinessGates": L, "runtimeClassName": S, "enableServiceLinks": B, "preemptionPolicy": S,
            "overhead": M, "topologySpreadConstraints": L, "setHostnameAsFQDN": B, "os": O, "hostUsers": B,
            "schedulingGates": L, "resourceClaims": L, "resources": O, "hostnameOverride": S}
POD = {"apiVersion": S, "kind": S, "metadata": O, "spec": O, "status": O}
_GO_NAMES = {id(POD): "Pod", id(OBJECT_META): "ObjectMeta", id(POD_SPEC): "PodSpec", id(CONTAINER): "Container",
             id(EPHEMERAL_CONTAINER): "EphemeralContainer"}


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


_FITS = {S: ("string",), I: ("number",), B: ("bool",), L: ("array",), M: ("object",), O: ("object",)}
_GO_TYPES = {S: "string", I: "int64", B: "bool", L: "[]...", M: "map[string]string", O: "struct"}


def _walk(obj: dict, fields: Dict[str, str], path: str, unknown: List[str], wrong: List[Tuple[str, str, str, str]],
          children: Dict[str, object]) -> None:
    for key in list(obj):
        value = obj[key]
        where = f"{path}.{key}" if path else key
        kind = fields.get(key)
        if kind is None:
            unknown.append(where)
            del obj[key]
            continue
        if value is not None and _json_type(value) not in _FITS[kind]:
            wrong.append((_json_type(value), _GO_NAMES[id(fields)], where, _GO_TYPES[kind]))
            continue
        sub = children.get(key)
        if isinstance(sub, dict) and isinstance(value, dict):
            _walk(value, sub, where, unknown, wrong, {})
        elif isinstance(sub, tuple) and isinstance(value, list):  # a list of structs
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _walk(item, sub[0], f"{where}[{i}]", unknown, wrong, {})


def decode_pod(body: dict, field_validation: str) -> List[str]:
    """Drop the fields a Pod does not have (in place); return the Warning texts. Raises the 400s."""
    mode = field_validation or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise ApiError(400, "BadRequest", f'Invalid field validation directive: {mode}', {})
    unknown: List[str] = []
    wrong: List[Tuple[str, str, str, str]] = []
    _walk(body, POD, "", unknown, wrong, {"metadata": OBJECT_META})
    spec = body.get("spec")
    if isinstance(spec, dict):
        _walk(spec, POD_SPEC, "spec", unknown, wrong, {"containers": (CONTAINER,), "initContainers": (CONTAINER,),
                                                       "ephemeralContainers": (EPHEMERAL_CONTAINER,)})
    prefix = 'Pod in version "v1" cannot be handled as a Pod: '
    if wrong:
        got, struct, where, want = wrong[0]
        raise ApiError(400, "BadRequest", f"{prefix}json: cannot unmarshal {got} into Go struct field {struct}."
                       f"{_go_path(where)} of type {want}", {})
    if unknown and mode == "Strict":
        raise ApiError(400, "BadRequest", prefix + "strict decoding error: " +
                       ", ".join(f'unknown field "{u}"' for u in unknown), {})
    return [f'unknown field "{u}"' for u in unknown] if mode == "Warn" else []


def _go_path(where: str) -> str:
    """encoding/json names the field by its JSON path without list indexes."""
    import re

    return re.sub(r"\[\d+\]", "", where)


def warning_header(texts: List[str]) -> Optional[List[str]]:
    if not texts:
        return None
    return ['299 - "' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts]
