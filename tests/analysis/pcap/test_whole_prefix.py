"""The last whole record of a growing capture, judged by capinfos (Wireshark's reader): fed in any chunking, the
edge of a whole file is its length and the packet count is capinfos'; a file cut anywhere and truncated to the
edge reads without an error and holds exactly the counted packets."""
import random
import subprocess
from pathlib import Path

import pytest

from kubectl_whose.analysis.pcap.reader import whole_prefix
from tests.helpers.netns import requires_tools
from tests.helpers.zeek_baselines import ZEEK_DIR

pytestmark = requires_tools("capinfos", "editcap")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "captures"


def captures():
    found = sorted(FIXTURES.glob("*.pcap*"))
    if ZEEK_DIR is not None:
        found += sorted(p for p in (ZEEK_DIR / "traces").rglob("*") if p.suffix in (".pcap", ".pcapng"))[:20]
    return found


def capinfos_count(path: Path):
    """(packets, whether capinfos read to the end without an error)."""
    r = subprocess.run(["capinfos", "-c", "-M", "-T", str(path)], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    return int(lines[-1].split("\t")[1]) if lines else None, r.returncode == 0 and not r.stderr.strip()


def fed(data: bytes, step: int):
    """(edge, packets) of `data` fed in chunks of `step` bytes."""
    return whole_prefix(data[i:i + step] for i in range(0, len(data), step))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = []
    tmp = tmp_path_factory.mktemp("edge")
    for path in captures():
        out.append(path)
        if path.suffix == ".pcap":  # the same packets as pcapng, as Wireshark writes it
            ng = tmp / (path.stem + ".pcapng")
            if subprocess.run(["editcap", "-F", "pcapng", str(path), str(ng)], capture_output=True).returncode == 0:
                out.append(ng)
    assert len(out) >= 6
    return out


def test_whole_files_end_at_their_length_with_capinfos_count(files):
    for path in files:
        data = path.read_bytes()
        packets, clean = capinfos_count(path)
        if not clean:
            continue  # a file Wireshark itself finds cut is no oracle for a whole one
        for step in (1, 13, 4096, len(data) or 1):
            assert fed(data, step) == (len(data), packets), (path.name, step)


def test_a_file_cut_anywhere_and_truncated_to_the_edge_reads_cleanly(files, tmp_path):
    rng = random.Random(7)
    for path in files:
        data = path.read_bytes()
        if not capinfos_count(path)[1]:
            continue
        for cut in sorted(rng.sample(range(1, len(data)), min(4, len(data) - 1))):
            edge, packets = fed(data[:cut], 509)
            assert edge <= cut
            if packets == 0:
                continue  # not even one whole packet: nothing to read back
            kept = tmp_path / ("cut" + path.suffix)
            kept.write_bytes(data[:edge])
            assert capinfos_count(kept) == (packets, True), (path.name, cut)
            # and one byte more is a cut packet, which capinfos reports
            if edge < cut:
                kept.write_bytes(data[:edge + 1])
                assert not capinfos_count(kept)[1], (path.name, cut)
