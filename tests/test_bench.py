"""The fan-out benchmark's quick mode still runs end to end (no figure is checked)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bench_quick_mode_prints_the_tables(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    bench = str(ROOT / "bench" / "run.py")
    result = subprocess.run(
        [sys.executable, bench, "--n", "200", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for title in ("Fan-out, N = 200", "Ask path", "Vote storm", "Slow consumers", "Scale-out"):
        assert title in out, out
    assert "| liveqa | 200 |" in out
    assert "| raw-broadcast | 200 |" in out
    assert list(tmp_path.glob("run-*.json"))
