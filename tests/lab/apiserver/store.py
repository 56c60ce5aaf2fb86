"""Objects, resourceVersions and watches: an etcd-and-watch-cache in miniature.

Every write bumps one global resourceVersion and appends an event; a watch from resourceVersion N replays the
events after N and then blocks on a condition for new ones (what kubectl's `waitForContainer` relies on).
"""
from __future__ import annotations

import copy
import datetime
import threading
import time
import uuid
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from .status import ApiError, conflict, not_found

Key = Tuple[str, str, str]  # (resource, namespace, name)
_EVENT_WINDOW = 20000


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self):
        self._objects: Dict[Key, dict] = {}
        self._events: List[Tuple[int, str, str, dict]] = []  # (rv, type, resource, object)
        self._rv = 100
        self._compacted = 0  # the last compacted revision
        self._cond = threading.Condition()
        self.closed = False

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> dict:
        with self._cond:
            obj = self._objects.get((resource, namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return copy.deepcopy(obj)

    def exists(self, resource: str, namespace: str, name: str) -> bool:
        with self._cond:
            return (resource, namespace, name) in self._objects

    def list(self, resource: str, namespace: Optional[str] = None,
             match: Callable[[dict], bool] = lambda o: True) -> Tuple[List[dict], str]:
        with self._cond:
            items = [copy.deepcopy(o) for (r, ns, _), o in sorted(self._objects.items())
                     if r == resource and (not namespace or ns == namespace) and match(o)]
            return items, str(self._rv)

    def list_page(self, resource: str, namespace: Optional[str], match: Callable[[dict], bool], limit: int,
                  start: Tuple[str, str] = ("", ""), at: Optional[int] = None) -> Tuple[List[dict], str, Optional[tuple],
                                                                                         int]:
        """One page of a chunked list (`limit`/`continue`): the items after `start` (namespace, name), the list's
        resourceVersion, the key to continue from (None: last page) and how many items remain. `at`: the
        resourceVersion of the first page, whose snapshot later pages continue (410 once compacted)."""
        with self._cond:
            if at is not None and at < self._compacted:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list "
                               "result. You can start a new list without the continue parameter, or use the continue "
                               "token in this response to retrieve the remainder of the results. Continuing with the "
                               "provided token results in an inconsistent list - objects that were created, modified, "
                               "or deleted between the time the first chunk was returned and now may show up in the "
                               "list.", {})
            keys = [(ns, name) for (r, ns, name), o in sorted(self._objects.items())
                    if r == resource and (not namespace or ns == namespace) and match(o) and (ns, name) > start]
            page = keys[:limit]
            items = [copy.deepcopy(self._objects[(resource, ns, name)]) for ns, name in page]
            rv = str(at if at is not None else self._rv)
            more = len(keys) > limit
            return items, rv, (page[-1] if more else None), len(keys) - len(page)

    def names(self, resource: str, namespace: str, match: Callable[[dict], bool]) -> set:
        """Names of the matching objects, without copying them (for polling)."""
        with self._cond:
            return {name for (r, ns, name), o in self._objects.items()
                    if r == resource and ns == namespace and match(o)}

    @property
    def resource_version(self) -> str:
        with self._cond:
            return str(self._rv)

    # -- writes ------------------------------------------------------------------------------------------------
    def create(self, resource: str, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        key = (resource, meta.get("namespace", ""), meta["name"])
        with self._cond:
            if key in self._objects:
                from .status import already_exists
                raise already_exists(resource, meta["name"])
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            self._commit(resource, key, obj, "ADDED")
            return copy.deepcopy(obj)

    def update(self, resource: str, namespace: str, name: str, mutate: Callable[[dict], Optional[dict]],
               expect_rv: Optional[str] = None) -> dict:
        """Read-modify-write under the store lock; `mutate` edits the copy in place (or returns a new object)."""
        with self._cond:
            key = (resource, namespace, name)
            cur = self._objects.get(key)
            if cur is None:
                raise not_found(resource, name)
            if expect_rv and expect_rv != cur["metadata"].get("resourceVersion"):
                raise conflict(resource, name)
            new = copy.deepcopy(cur)
            out = mutate(new)
            new = out if out is not None else new
            if new == cur:
                return copy.deepcopy(cur)
            self._commit(resource, key, new, "MODIFIED")
            return copy.deepcopy(new)

    def delete(self, resource: str, namespace: str, name: str) -> dict:
        with self._cond:
            key = (resource, namespace, name)
            obj = self._objects.pop(key, None)
            if obj is None:
                raise not_found(resource, name)
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._append(resource, "DELETED", obj)
            return obj

    def _commit(self, resource: str, key: Key, obj: dict, etype: str) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = obj
        self._append(resource, etype, copy.deepcopy(obj))

    def _append(self, resource: str, etype: str, obj: dict) -> None:
        self._events.append((self._rv, etype, resource, obj))
        if len(self._events) > _EVENT_WINDOW:
            del self._events[: len(self._events) - _EVENT_WINDOW]
        self._cond.notify_all()

    def compact(self) -> str:
        """etcd's compaction (the apiserver asks for one every 5 minutes): history up to now is gone, so a watch or
        a continue token from an older resourceVersion is answered 410 Expired. Returns the compacted revision."""
        with self._cond:
            self._events.clear()
            self._compacted = self._rv
            return str(self._rv)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # -- watch -------------------------------------------------------------------------------------------------
    def watch(self, resource: str, namespace: Optional[str], match: Callable[[dict], bool],
              resource_version: str, timeout: float, send_initial: bool = False) -> Iterator[Tuple[str, dict]]:
        """Yield (type, object) from `resource_version` on; "" or "0" starts with ADDED for what exists now.

        `send_initial` is the streaming list (WatchList, `sendInitialEvents=true`, client-go's default since 1.32):
        ADDED for every current object, then a BOOKMARK annotated `k8s.io/initial-events-end`, then changes.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if send_initial:
                since = self._rv
                initial = [("ADDED", copy.deepcopy(o)) for (r, ns, _), o in sorted(self._objects.items())
                           if r == resource and (not namespace or ns == namespace) and match(o)]
                initial.append(("BOOKMARK", {"metadata": {"resourceVersion": str(since), "annotations": {
                    "k8s.io/initial-events-end": "true"}}}))
            elif resource_version in ("", "0"):
                since = self._rv
                initial = [("ADDED", copy.deepcopy(o)) for (r, ns, _), o in sorted(self._objects.items())
                           if r == resource and (not namespace or ns == namespace) and match(o)]
            else:
                since = int(resource_version)
                oldest = self._events[0][0] if self._events else self._rv
                if (since < oldest - 1 or since < self._compacted) and since < self._rv:
                    raise ApiError(410, "Expired", f"too old resource version: {since} ({max(oldest, self._compacted)})",
                                   {})
                initial = []
        for item in initial:
            yield item
        while True:
            with self._cond:
                pending = [(t, copy.deepcopy(o)) for rv, t, r, o in self._events
                           if rv > since and r == resource and
                           (not namespace or o["metadata"].get("namespace") == namespace) and match(o)]
                since = self._rv
                if not pending:
                    left = deadline - time.monotonic()
                    if left <= 0 or self.closed:
                        return
                    self._cond.wait(min(left, 1.0))
                    continue
            for item in pending:
                yield item
