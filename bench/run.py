#!/usr/bin/env python3
"""Turnpike against mosquitto on loopback (`make bench`, bench/run.sh): every scenario against
both brokers, alternately; writes bench/results/<date>.md, <date>-<scenario>.png and <date>.json.
The harness is the package next to this file, bench/turnpike_bench/ (one file per concern, one
per scenario in its scenarios/); `bench/run.py --help` lists the scenarios and flags."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turnpike_bench.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
