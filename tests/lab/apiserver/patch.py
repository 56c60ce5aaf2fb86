"""The three PATCH dialects a Kubernetes server accepts, for the objects the lab serves.

- strategic merge (application/strategic-merge-patch+json): lists with a patch merge key are merged item by item
  (`ephemeralContainers` by `name` — why kubectl can send only the new container), with the `$setElementOrder`,
  `$patch` and `$deleteFromPrimitiveList` directives; other lists are replaced;
- JSON merge patch (RFC 7386): every list is replaced whole (so dropping an existing ephemeral container is a 422);
- JSON patch (RFC 6902): operations on JSON pointers; any failure is the server's generic 422.
"""
from __future__ import annotations

import copy
import json
from typing import Any, List

from .status import ApiError

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

# patchMergeKey of the list fields (k8s.io/api core/v1 types.go `patchStrategy:"merge"` tags).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
              "ports": "containerPort", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
              "volumes": "name", "imagePullSecrets": "name", "ownerReferences": "uid", "hostAliases": "ip",
              "topologySpreadConstraints": "topologyKey", "resourceClaims": "name", "conditions": "type"}
MERGED_PRIMITIVE_LISTS = {"finalizers"}


def rejected() -> ApiError:
    # handlers/patch.go + NewGenericServerResponse drop the library's error text.
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request", {})


def apply_patch(content_type: str, current: dict, body: bytes) -> dict:
    ctype = content_type.split(";")[0].strip().lower()
    try:
        patch = json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "BadRequest", "error decoding patch: invalid JSON", {})
    if ctype == STRATEGIC:
        if not isinstance(patch, dict):
            raise rejected()
        return strategic_merge(copy.deepcopy(current), patch)
    if ctype == MERGE:
        return merge_patch(copy.deepcopy(current), patch)
    if ctype == JSON_PATCH:
        if not isinstance(patch, list):
            raise rejected()
        return json_patch(copy.deepcopy(current), patch)
    from .status import unsupported_media_type
    raise unsupported_media_type()


# -- RFC 7386 ----------------------------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


# -- strategic merge ---------------------------------------------------------------------------------------------
def strategic_merge(target: dict, patch: dict) -> dict:
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return {}
    orders = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    for key, value in patch.items():
        if key.startswith("$"):
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                target[name] = [x for x in target.get(name) or [] if x not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            cur = target.get(key)
            target[key] = strategic_merge(cur if isinstance(cur, dict) else {}, value)
        elif isinstance(value, list) and key in MERGE_KEYS:
            target[key] = _merge_list(target.get(key) or [], value, MERGE_KEYS[key], orders.get(key))
        elif isinstance(value, list) and key in MERGED_PRIMITIVE_LISTS:
            cur = list(target.get(key) or [])
            target[key] = cur + [x for x in value if x not in cur]
        else:
            target[key] = copy.deepcopy(value)
    for key, order in orders.items():
        if key not in patch and key in MERGE_KEYS and key in target:
            target[key] = _reorder(target[key], MERGE_KEYS[key], order)
    return target


def _merge_list(current: List[dict], patch: List[Any], merge_key: str, order) -> List[dict]:
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [x for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
    out = [copy.deepcopy(x) for x in current]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise rejected()
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(merge_key) == item[merge_key]),
                   None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge({}, item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return _reorder(out, merge_key, order) if order else out


def _reorder(items: List[dict], merge_key: str, order: List[dict]) -> List[dict]:
    rank = {o.get(merge_key): i for i, o in enumerate(order or []) if isinstance(o, dict)}
    return sorted(items, key=lambda x: rank.get(x.get(merge_key), len(rank)))


# -- RFC 6902 ----------------------------------------------------------------------------------------------------
def _pointer(path: str) -> List[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise rejected()
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: List[str]):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise rejected()
    return cur


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise rejected()


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-":
            parent.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), copy.deepcopy(value))
        else:
            raise rejected()
    else:
        raise rejected()
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise rejected()
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent.pop(int(last))
    else:
        raise rejected()
    return doc


def json_patch(doc: dict, ops: List[dict]) -> dict:
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise rejected()
        kind, path = op.get("op"), op["path"]
        if kind == "add":
            doc = _add(doc, path, op.get("value"))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, op.get("value")) if _pointer(path) else op.get("value")
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise rejected()
        else:
            raise rejected()
    return doc
