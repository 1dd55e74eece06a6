"""The benchmarks still run (at tiny sizes; their times are not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run_prints_its_table() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--small"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    figures = [row.split("|")[1].strip() for row in rows[2:]]
    for expected in ("start-up", "per node", "backward chain_1000.yaml", "full-size", "broadcast", "JSON output",
                     "text --full", "memory-mapped", "one-formula",
                     "set_input", "train step", "cgraph sweep", "sweep, per point", "conv2d", "max_pool2d",
                     "vector_chain_1000.yaml --format json", "vector_chain_1000.yaml --format text",
                     "wide_100.yaml --format json", "wide_100.yaml --format text", "2-element vector",
                     "text of a (2,) array", "through the API, two-layer net", "MLP model"):
        assert any(expected in figure for figure in figures), expected
    verdicts = {row.split("|")[5].strip() for row in rows[2:]}
    assert verdicts <= {"PASS", "FAIL", "-", ""} and verdicts & {"PASS", "FAIL"}
