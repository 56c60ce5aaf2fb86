"""A preflight check and doctor's report of them: data only, rendered by `render.doctor_view`."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional


@dataclass
class Check:
    name: str
    result: str  # pass | fail | warn | skip
    detail: str
    fix: str = ""
    code: int = 0  # ExitCode of a failure

    def to_dict(self):
        d = asdict(self)
        d.pop("code")
        return d


@dataclass
class Report:
    pod: str
    namespace: str
    context: str
    checks: List[Check]
    path: Optional[Check] = None  # the conclusion: which way capture works for this pod, and why

    def to_dict(self):
        return {"pod": self.pod, "namespace": self.namespace, "context": self.context,
                "ok": not any(c.result == "fail" for c in self.checks), "checks": [c.to_dict() for c in self.checks],
                "path": self.path.to_dict() if self.path else None}
