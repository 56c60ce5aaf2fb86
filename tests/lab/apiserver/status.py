"""`metav1.Status` error bodies, with the exact texts of a real API server (research/k8s-api-spec.md §6)."""
from __future__ import annotations

from typing import List, Optional


class ApiError(Exception):
    """An API answer that is not a success: HTTP code + Status body (or plain text, as the kubelet sends)."""

    def __init__(self, code: int, reason: str, message: str, details: Optional[dict] = None,
                 plain_text: bool = False):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details if details is not None else {}
        self.plain_text = plain_text
        self.headers: dict = {}

    def body(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
               "reason": self.reason, "details": self.details, "code": self.code}
        if self.details is None:
            del out["details"]
        return out


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def no_such_path() -> ApiError:
    # go-restful's serviceErrorHandler: details are empty, which is how kubectl tells "old server" from "no pod".
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def forbidden(resource: str, name: str, why: str) -> ApiError:
    label = f'{resource} "{name}"' if name else resource
    return ApiError(403, "Forbidden", f"{label} is forbidden: {why}", {"name": name, "kind": resource} if name
                    else {"kind": resource})


def rbac_forbidden(user: str, verb: str, resource: str, group: str, namespace: str, name: str) -> ApiError:
    base = resource.split("/")[0]
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}"{where}'
    return forbidden(base if not group else f"{base}.{group}", name, why)


def unauthorized() -> ApiError:
    e = ApiError(401, "Unauthorized", "Unauthorized", None)
    e.details = None  # real 401s carry no details
    return e


def invalid(name: str, errors: List[dict], kind: str = "Pod") -> ApiError:
    """422 with `field: Type: detail` errors (apimachinery field/errors.go formatting)."""
    texts = [_field_error_text(e) for e in errors]
    agg = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = [{"reason": e["type"], "message": _field_error_text(e, with_field=False), "field": e["field"]}
              for e in errors]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {agg}',
                    {"name": name, "kind": kind, "causes": causes})


_TYPE_TEXT = {"FieldValueForbidden": "Forbidden", "FieldValueRequired": "Required value",
              "FieldValueDuplicate": "Duplicate value", "FieldValueNotFound": "Not found",
              "FieldValueInvalid": "Invalid value", "FieldValueNotSupported": "Unsupported value"}


def field_error(field: str, type_: str, detail: str = "", value=None) -> dict:
    return {"field": field, "type": type_, "detail": detail, "value": value}


def _field_error_text(e: dict, with_field: bool = True) -> str:
    import json
    text = _TYPE_TEXT[e["type"]]
    if e.get("value") is not None:
        text += ": " + json.dumps(e["value"])
    if e.get("detail"):
        text += ": " + e["detail"]
    return f'{e["field"]}: {text}' if with_field else text


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, {})


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type() -> ApiError:
    return ApiError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})


def conflict(resource: str, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "kind": resource})


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists', {"name": name, "kind": resource})
