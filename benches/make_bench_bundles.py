#!/usr/bin/env python3
"""Write ZIP support bundles with large, mostly uneventful connector logs.

Each bundle contains local.xml, policy.xml and one version folder with
sfc.exe.log and two rotated siblings. The logs are ordinary debug-level scan
chatter in the sfc.exe.log line shape, with a few definition update attempts
and, near the end of the newest log, one failing attempt whose error rotates
through several root causes. Only the standard library is used.

Usage: make_bench_bundles.py OUT_DIR [--bundles N] [--log-mb MB] [--seed S]
"""

from __future__ import annotations

import argparse
import calendar
import random
import uuid
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

AMP_DIR = "Program Files/Cisco/AMP"
CONNECTOR_VERSION = "8.1.7.21417"
TETRA_HOST = "tetra-defs.amp.cisco.com"
# Rotated logs first, so the failure sits near the end of the newest log.
LOG_NAMES = ["sfc.exe.log.2", "sfc.exe.log.1", "sfc.exe.log"]

PROCESSES = [
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\explorer.exe",
    r"C:\Program Files\Mozilla Firefox\firefox.exe",
    r"C:\Windows\System32\RuntimeBroker.exe",
    r"C:\Program Files\Microsoft VS Code\Code.exe",
]

# (update error line, root cause id the tool is expected to report)
FAILURES = [
    (f"TetraUpdater::Download: curl error 6: Could not resolve host: {TETRA_HOST}",
     "dns-resolution-failed"),
    ("TetraUpdater::Download: curl error 35: schannel: next InitializeSecurityContext failed: "
     "CRYPT_E_REVOCATION_OFFLINE (0x80092013) - The revocation function was unable to check "
     "revocation because the revocation server was offline.",
     "tls-revocation-check-failed"),
    ("TetraUpdater::Download: WinHttpSendRequest failed with error 12029 connecting to "
     f"{TETRA_HOST}:443", "server-unreachable"),
    ("TetraUpdater::Download: proxy returned HTTP/1.1 407 Proxy Authentication Required",
     "proxy-auth-failed"),
]


def scan_noise(rng: random.Random) -> str:
    """Return the message part of one line of debug scan chatter."""
    roll = rng.random()
    if roll < 0.35:
        target = rf"C:\Users\asmith\AppData\Local\Temp\tmp{rng.getrandbits(16):X}.tmp"
        return (rf"Event::HandleCreation: START \\?\{target}(\\?\{target}), "
                rf"\\?\{rng.choice(PROCESSES)}")
    if roll < 0.55:
        return f"TetraEngineInterface::ScanFile[{rng.randint(100, 99999)}] lock acquired"
    if roll < 0.65:
        return f"TetraEngineInterface::ScanFile[{rng.randint(100, 99999)}] lock released"
    if roll < 0.85:
        return "Query::LookupExecute: attempting lookup with cloud"
    return f"Query::LookupComplete: sha256 {rng.getrandbits(256):064x} disposition clean"


class LogWriter:
    """Formats lines as `(<counter>, +<n> ms) <Mon> <d> <HH:MM:SS> [<thread>]: <text>`."""

    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.now = start
        self.counter = rng.randint(100_000, 900_000)

    def line(self, text: str) -> str:
        self.counter += 1
        self.now += timedelta(milliseconds=self.rng.randint(0, 900))
        stamp = f"{self.now:%b} {self.now.day} {self.now:%H:%M:%S}"
        thread = self.rng.choice((4312, 5120, 6088, 7716))
        return f"({self.counter}, +{self.rng.choice((0, 0, 0, 15, 47))} ms) {stamp} [{thread}]: {text}\r\n"


def write_log(writer: LogWriter, size: int, failure: str | None) -> bytes:
    """Return about `size` bytes of log; `failure` goes in about 2 KB before the end."""
    parts: list[str] = []
    written = 0
    failure_at = size - 2048
    next_attempt = size // 3
    while written < size:
        if failure is not None and written >= failure_at:
            parts.append(writer.line("TetraUpdater::Run: starting TETRA definition update"))
            parts.append(writer.line(failure))
            failure = None
            failure_at = size + 1
        elif written >= next_attempt:
            parts.append(writer.line("TetraUpdater::Run: starting TETRA definition update"))
            parts.append(writer.line("TetraUpdater::Run: TETRA definitions updated to version 90604"))
            next_attempt += size // 3
        text = writer.line(scan_noise(writer.rng))
        parts.append(text)
        written += len(text)
    return "".join(parts).encode("utf-8")


def local_xml(guid: str, last_success: datetime, last_check: datetime) -> bytes:
    success = calendar.timegm(last_success.timetuple())
    check = calendar.timegm(last_check.timetuple())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n<config><agent>'
        f"<uuid>{guid}</uuid><engine><tetra>"
        "<defversions>TETRA:90604</defversions>"
        f"<lastupdate>{success}</lastupdate><lastsuccesstime>{success}</lastsuccesstime>"
        f"<lastupdatechecked>{check}</lastupdatechecked>"
        "</tetra></engine></agent></config>\r\n"
    ).encode("utf-8")


def policy_xml() -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><Object><config>'
        "<janus><policy><name>Benchmark Policy</name><serial_number>812</serial_number></policy></janus>"
        "<agent><log><level>1</level></log><scansettings><tetra><enable>1</enable>"
        "<updater><enable>1</enable><interval>3600</interval></updater></tetra></scansettings></agent>"
        "</config></Object></Signature>\r\n"
    ).encode("utf-8")


def write_bundle(path: Path, index: int, log_bytes: int, seed: int) -> str:
    """Write one bundle and return the root cause it is built to show."""
    rng = random.Random(seed * 100_003 + index)
    collected = datetime(2023, 5, 1, 9, 0, 0) + timedelta(days=index % 27, minutes=index)
    failure, cause = FAILURES[index % len(FAILURES)]
    # Spread the definition age over the table's buckets: hours to weeks.
    age = timedelta(hours=[5, 30, 100, 300][(index // len(FAILURES)) % 4])
    guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    per_log = log_bytes // len(LOG_NAMES)
    writer = LogWriter(rng, collected - timedelta(seconds=per_log * len(LOG_NAMES) // 200))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{AMP_DIR}/local.xml", local_xml(guid, collected - age, collected))
        archive.writestr(f"{AMP_DIR}/policy.xml", policy_xml())
        for name in LOG_NAMES:
            text = write_log(writer, per_log, failure if name == "sfc.exe.log" else None)
            archive.writestr(f"{AMP_DIR}/{CONNECTOR_VERSION}/{name}", text)
    return cause


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--bundles", type=int, default=16)
    parser.add_argument("--log-mb", type=float, default=24.0,
                        help="uncompressed log size per bundle, in MiB")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_bytes = int(args.log_mb * 1024 * 1024)
    for index in range(args.bundles):
        collected = datetime(2023, 5, 1, 9, 0, 0) + timedelta(days=index % 27, minutes=index)
        name = f"bench{index:03d}_CiscoAMP_Support_Tool_{collected:%Y_%m_%d_%H_%M_%S}.zip"
        cause = write_bundle(args.out_dir / name, index, log_bytes, args.seed)
        print(f"{name}\t{cause}")


if __name__ == "__main__":
    main()
