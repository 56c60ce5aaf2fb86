"""Exit codes and the one exception type that carries a user-facing sentence.

Every failure a user can hit is raised as `WhoseError(message, code)`; `cli.main` is the one
place that turns it into `kubectl-whose: error: <message>` on stderr and the exit code below.
Scripts may rely on these numbers: they are documented in README.md and never reused.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # an unexpected failure: the line says how to report it (with --traceback output)
    USAGE = 2  # bad flags or arguments (click's own code)
    BAD_INPUT = 3  # a capture or rule file that cannot be read or parsed at all
    NOT_FOUND = 4  # pod, namespace, container, stream or context not found
    POD_NOT_RUNNING = 5  # the pod (or the debug container) is not running
    FORBIDDEN = 6  # RBAC denied a verb the plugin needs
    ADMISSION_REJECTED = 7  # PodSecurity or a webhook rejected the debug container
    UNSUPPORTED_SERVER = 8  # no ephemeralcontainers subresource (old or restricted server)
    IMAGE_PULL = 9  # the debug image could not be pulled
    TOOL_MISSING = 10  # the debug image lacks a binary (tcpdump, iptables-save, ...)
    NO_CAPABILITY = 11  # NET_ADMIN / NET_RAW missing where the tool runs
    BAD_FILTER = 12  # tcpdump rejected the BPF filter expression
    BAD_INTERFACE = 13  # no such interface in the pod
    CONNECTION_LOST = 14  # the API connection dropped mid-stream (data so far is kept)
    TIMEOUT = 15  # waited too long (container start, API answer)
    CONFIG = 16  # kubeconfig missing or invalid
    PARTIAL = 17  # several pods: some could not be captured (their errors are listed; the others' results shown)
    UNSUPPORTED_LINK = 18  # a readable capture none of whose frames has a link type we decode
    WRITE_FAILED = 19  # -w: the file could not take more (disk full, quota); it is cut at the last whole packet
    INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C (a capture still prints what it collected)


class WhoseError(Exception):
    """A failure with one clear line for the user and a distinct exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = ExitCode(code)
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"
