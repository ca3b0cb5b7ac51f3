"""Screenshot an HTML report with headless Chromium, for people who want to look at one.

    python scripts/screenshot_report.py report.html docs/report.png [--size 1400,1600]

Make the report first: hanzo-run report RUN_ID --db runs.db --html report.html
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--size", default="1400,1600", help="window width,height in pixels")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs chromium (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    args.png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={args.size}",
                               "--virtual-time-budget=5000", f"--screenshot={args.png.resolve()}",
                               args.html.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not args.png.exists():
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"wrote {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
