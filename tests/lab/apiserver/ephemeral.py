"""The `pods/{name}/ephemeralcontainers` write pipeline of a real server (podEphemeralContainersStrategy):
default → keep only `spec.ephemeralContainers` from the new object → validate (existing containers immutable and
undeletable, the allow-list of fields, unique names, target must be a regular or init container).
Texts: research/k8s-api-spec.md §1–§3.
"""
from __future__ import annotations

import copy
import json
import re
from typing import List

from .status import field_error, invalid

_FORBIDDEN_FIELDS = ("ports", "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                     "resizePolicy", "restartPolicy", "restartPolicyRules")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def default_container(c: dict) -> dict:
    """SetDefaults_Container: what the server echoes back (and compares with on the next write)."""
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in c:
        image = c.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    if "resources" not in c:
        c["resources"] = {}
    return c


def merge_update(old: dict, new: dict) -> dict:
    """dropNonEphemeralContainerUpdates: everything but spec.ephemeralContainers keeps its stored value."""
    result = copy.deepcopy(old)
    ecs = [default_container(copy.deepcopy(c)) for c in ((new.get("spec") or {}).get("ephemeralContainers") or [])
           if isinstance(c, dict)]
    if ecs:
        result["spec"]["ephemeralContainers"] = ecs
    else:
        result["spec"].pop("ephemeralContainers", None)
    return result


def validate_update(old: dict, new: dict) -> None:
    name = old["metadata"]["name"]
    errors: List[dict] = []
    if "kubernetes.io/config.mirror" in (old["metadata"].get("annotations") or {}):
        errors.append(field_error("", "FieldValueForbidden", "static pods do not support ephemeral containers"))
        raise invalid(name, errors)
    spec = new["spec"]
    ecs = spec.get("ephemeralContainers") or []
    regular = [c["name"] for c in spec.get("containers") or []] + [c["name"] for c in spec.get("initContainers") or []]
    seen = set(regular)
    for i, c in enumerate(ecs):
        path = f"spec.ephemeralContainers[{i}]"
        cname = c.get("name") or ""
        if not cname:
            errors.append(field_error(f"{path}.name", "FieldValueRequired"))
        elif not _DNS1123_LABEL.match(cname) or len(cname) > 63:
            errors.append(field_error(f"{path}.name", "FieldValueInvalid", "a lowercase RFC 1123 label must consist "
                          "of lower case alphanumeric characters or '-', and must start and end with an "
                          "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')", cname))
        elif cname in seen:
            errors.append(field_error(f"{path}.name", "FieldValueDuplicate", value=cname))
        seen.add(cname)
        if not c.get("image"):
            errors.append(field_error(f"{path}.image", "FieldValueRequired"))
        for f in _FORBIDDEN_FIELDS:
            if c.get(f) not in (None, {}, [], ""):
                errors.append(field_error(f"{path}.{f}", "FieldValueForbidden",
                                          "cannot be set for an Ephemeral Container"))
        for j, vm in enumerate(c.get("volumeMounts") or []):
            for f in ("subPath", "subPathExpr"):
                if vm.get(f):
                    errors.append(field_error(f"{path}.volumeMounts[{j}].{f}", "FieldValueForbidden",
                                              "cannot be set for an Ephemeral Container"))
        target = c.get("targetContainerName")
        if target and target not in regular:
            errors.append(field_error(f"{path}.targetContainerName", "FieldValueNotFound", value=target))
    new_by_name = {c.get("name"): c for c in ecs}
    for oc in (old["spec"].get("ephemeralContainers") or []):
        nc = new_by_name.get(oc["name"])
        if nc is None:
            errors.append(field_error("spec.ephemeralContainers", "FieldValueForbidden",
                                      f'existing ephemeral containers "{oc["name"]}" may not be removed\n'))
        elif nc != oc:
            errors.append(field_error("spec.ephemeralContainers", "FieldValueForbidden",
                                      f'existing ephemeral containers "{oc["name"]}" may not be changed\n'
                                      + _diff(oc, nc)))
    if errors:
        raise invalid(name, errors)


def _diff(old: dict, new: dict) -> str:
    # go-cmp's `-old +new` shape, one line per changed top-level field.
    lines = ["  core.EphemeralContainer{"]
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            if k in old:
                lines.append(f"-\t{k}: {json.dumps(old[k])},")
            if k in new:
                lines.append(f"+\t{k}: {json.dumps(new[k])},")
    lines.append("  }\n")
    return "\n".join(lines)
