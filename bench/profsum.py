"""Summarise a py-spy raw (collapsed-stack) profile: top functions by self and total samples.

python bench/profsum.py bench/results/profile-votes-5000.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['fn']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in Path(args.profile).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [short(f) for f in stack.split(";") if f.strip()]
        # py-spy raw starts with the thread's name; skip frames that are not code
        frames = [f for f in frames if "(" in f]
        samples += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    print(f"{samples} samples")
    print("\nself time:")
    for f, n in own.most_common(args.top):
        print(f"  {100 * n / samples:5.1f}%  {f}")
    print("\ntotal (inclusive) time:")
    for f, n in total.most_common(args.top):
        print(f"  {100 * n / samples:5.1f}%  {f}")


if __name__ == "__main__":
    main()
