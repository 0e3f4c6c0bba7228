"""What ships: the wheel carries templates and static files; the README tells the truth."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from liveqa.settings import describe

ROOT = Path(__file__).parents[2]


def test_the_wheel_contains_templates_and_static_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("liveqa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.html")}
    static = {p.relative_to(ROOT).as_posix() for p in (ROOT / "static").rglob("*") if p.is_file()}
    assert templates and static
    assert {f"liveqa/{name}" for name in templates | static} <= names
    assert "liveqa/py.typed" in names


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for env, default, help in describe():
        assert f"| `{env}` | {default or '(unset)'} | {help} |" in readme


def test_the_procfile_serves_on_port() -> None:
    assert (
        ROOT / "Procfile"
    ).read_text().strip() == "web: liveqa serve --host 0.0.0.0 --port $PORT"
