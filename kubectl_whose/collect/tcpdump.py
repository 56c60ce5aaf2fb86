"""The tcpdump recipe: what runs in the debug container, how it is stopped, and what its stderr means.

argv (user input only ever as separate argv elements, never in a shell string):
    sh -c WRAPPER sh SECONDS tcpdump -U -w - -i IF [-s N] [-c N] --immediate-mode -- BPF WORDS...
WRAPPER is a fixed script: it prints its PID on stderr's first line, checks that `timeout` and `tcpdump` exist, then
`exec`s `timeout -s INT -k 2 SECONDS tcpdump ...`, so the PID it printed *is* the `timeout` process. Why:
- closing the exec WebSocket does not kill the remote process (kubernetes#89031), so a Ctrl-C on the laptop stops
  the capture with a second exec, `kill -INT PID`; `timeout` forwards SIGINT to tcpdump, which flushes what it
  buffered into the stream and exits (well within 2 s);
- `timeout` also bounds the capture in the pod itself (`--duration`, else the debug container's lifetime), so a
  laptop that dies or loses the connection leaves nothing running; `-k 2` kills a tcpdump that ignores SIGINT;
- `-U -w -` writes whole packets to stdout as they come (packet-buffered), `--immediate-mode` delivers them
  without waiting for the kernel buffer to fill, so the live view is live.
"""
from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import List, Optional, Sequence

from kubectl_whose.errors import ExitCode, WhoseError

WRAPPER = (
    'echo "$$" >&2; '
    'for t in tcpdump timeout; do command -v "$t" >/dev/null 2>&1 || '
    '{ echo "kubectl-whose: $t: not found" >&2; exit 127; }; done; '
    'd="$1"; shift; exec timeout -s INT -k 2 "$d" "$@"'
)
STOP_SIGNAL = "INT"
_NO_SETUID = "Couldn't change to"


@dataclass(frozen=True)
class CaptureRecipe:
    interface: str = "any"
    bpf: Optional[str] = None
    count: Optional[int] = None
    snaplen: Optional[int] = None
    seconds: Optional[float] = None  # the remote time limit


CAPTURE_BUFFER_KIB = 32768


def tcpdump_argv(recipe: CaptureRecipe) -> List[str]:
    # -B: --immediate-mode makes libpcap use a TPACKET_V2 ring of snaplen-sized slots; at the default
    # 2 MiB and 256 KiB snaplen that is 8 slots, and a burst on `-i any` drops packets. 32 MiB of
    # kernel buffer holds 128 full-size slots (thousands at a smaller -s).
    argv = ["tcpdump", "-U", "-w", "-", "-i", recipe.interface, "-B", str(CAPTURE_BUFFER_KIB)]
    if recipe.snaplen is not None:
        argv += ["-s", str(int(recipe.snaplen))]
    if recipe.count is not None:
        argv += ["-c", str(int(recipe.count))]
    argv.append("--immediate-mode")
    words = bpf_words(recipe.bpf)
    if words:
        argv += ["--", *words]
    return argv


def bpf_words(bpf: Optional[str]) -> List[str]:
    """Split the filter into words the way tcpdump joins them back (it concatenates argv with spaces); quotes are
    honoured so `-f "host 10.0.0.1 and port 80"` and `-f "port 80"` both work. The words go to tcpdump as argv."""
    if not bpf or not bpf.strip():
        return []
    try:
        return shlex.split(bpf)
    except ValueError:
        return bpf.split()


def capture_argv(recipe: CaptureRecipe) -> List[str]:
    seconds = recipe.seconds if recipe.seconds else 600
    limit = f"{max(1, math.ceil(seconds))}s"
    return ["sh", "-c", WRAPPER, "sh", limit, *tcpdump_argv(recipe)]


def stop_argv(pid: int) -> List[str]:
    return ["kill", f"-{STOP_SIGNAL}", str(int(pid))]


_PID_RE = re.compile(rb"^\s*(\d+)\s*$")
# tcpdump's informational lines, never the error
_NOISE = re.compile(r"^(tcpdump: (data link type|listening on|verbose output suppressed)|\d+ packets? )")


def parse_pid(first_line: bytes) -> Optional[int]:
    m = _PID_RE.match(first_line)
    return int(m.group(1)) if m else None


def tcpdump_messages(stderr: bytes) -> List[str]:
    """tcpdump's own lines, without our PID line and its statistics."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    if lines and _PID_RE.match(lines[0].encode()):
        lines = lines[1:]
    return [ln for ln in lines if ln.strip()]


def classify_failure(recipe: CaptureRecipe, stderr: bytes, exit_code: int, image: str,
                     pod: str = "POD") -> Optional[WhoseError]:
    """The error tcpdump reported on stderr, as one line with the right exit code (None when it did not fail);
    `pod` goes into the commands the line suggests."""
    from kubectl_whose.collect.recipe import missing_tool_error

    interface, bpf = recipe.interface, recipe.bpf
    lines = [ln for ln in tcpdump_messages(stderr) if not _NOISE.match(ln)]
    text = "\n".join(lines)

    def line_with(*needles: str) -> str:
        for i, ln in enumerate(lines):
            if any(n in ln for n in needles):
                # tcpdump puts the errno text on the next line in parentheses: keep it, unless it only repeats
                # the line ("eth9: No such device exists" then "(No such device exists)")
                nxt = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith("(") else ""
                if nxt and nxt.strip("()") in ln:
                    nxt = ""
                return f"{ln.strip()} {nxt}".strip()
        return lines[0].strip() if lines else ""

    first = line_with("filter expression", "syntax error", "illegal")
    if "kubectl-whose: tcpdump: not found" in text or (exit_code == 127 and "tcpdump" in text):
        return missing_tool_error("tcpdump", image)
    if "kubectl-whose: timeout: not found" in text:
        return WhoseError(f"the debug image {image} has no timeout (coreutils/busybox), which bounds the capture; "
                          f"pass --image with an image that carries it", ExitCode.TOOL_MISSING)
    if "filter expression" in text or "syntax error" in text or ("illegal" in text.lower() and bpf):
        return WhoseError(f"tcpdump rejected the filter {bpf!r}: {_strip(first)}; -f takes tcpdump's filter "
                          f"syntax (pcap-filter(7)), e.g. -f \"tcp port 80\"", ExitCode.BAD_FILTER)
    if "No such device" in text or "no suitable device" in text or "doesn't exist" in text:
        why = _strip(line_with("No such device", "no suitable", "exist"))
        if why.startswith(f"{interface}: "):
            why = why[len(interface) + 2:]
        return WhoseError(f"pod {pod} has no interface {interface!r} (tcpdump: {why}); `kubectl whose net {pod}` "
                          f"lists its interfaces, or -i any captures on all of them", ExitCode.BAD_INTERFACE)
    if _NO_SETUID in text:
        # tcpdump opened the device, then could not switch to its unprivileged user: CAP_SETUID/SETGID are gone
        # (a policy dropped ALL default capabilities; NET_ADMIN/NET_RAW alone do not let it drop privileges)
        return WhoseError(f"tcpdump cannot switch to its unprivileged user in the debug container: SETUID/SETGID "
                          f"were dropped from its capabilities ({_strip(line_with(_NO_SETUID))}); "
                          f"`kubectl whose doctor {pod}` checks why", ExitCode.NO_CAPABILITY)
    if "You don't have permission" in text or "Operation not permitted" in text:
        why = _strip(line_with("permission", "not permitted"))
        return WhoseError(f"tcpdump may not capture in the debug container: NET_RAW/NET_ADMIN are missing "
                          f"({why}); `kubectl whose doctor {pod}` checks why",
                          ExitCode.NO_CAPABILITY)
    if exit_code not in (0, None) and exit_code != 124:
        why = _strip(line_with("tcpdump:")) or "no message"
        return WhoseError(f"tcpdump failed with exit code {exit_code} ({why}); `kubectl whose doctor {pod}` checks "
                          f"the debug container", ExitCode.ERROR)
    return None


def _strip(line: str) -> str:
    return line[len("tcpdump: "):] if line.startswith("tcpdump: ") else line


def summary_counts(stderr: bytes) -> dict:
    """tcpdump's closing statistics ('N packets captured', '... dropped by kernel')."""
    out = {}
    for key, pattern in (("captured", rb"(\d+) packets? captured"), ("received", rb"(\d+) packets? received by filter"),
                         ("dropped", rb"(\d+) packets? dropped by kernel")):
        m = re.search(pattern, stderr)
        if m:
            out[key] = int(m.group(1))
    return out


def recipe_words(argv: Sequence[str]) -> str:
    """argv for messages (never executed)."""
    return " ".join(shlex.quote(a) for a in argv)
