"""Two ``bench_signing.py`` runs side by side, against issue 11's goals (run by hand).

    python benchmarks/compare_signing.py OLD/results.json NEW/results.json

Prints each run's goal lines (what every clip misses, each figure the mean over the clip's reads)
and then, on the clips both runs measured, what each clip misses before | after, the look where the
identity guard chose another, each run's totals and the clips with more and fewer misses. Only runs
on the same source cuts compare clip for clip: copy ``OUT_DIR/sources`` from the first run into the
second's ``OUT_DIR`` before running it (x264 does not cut a framing the same way twice).
``bench_signing.py OUT_DIR --against OLD/results.json`` prints the same after a run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_signing import against_goal, compare, load_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="the earlier run's results.json")
    ap.add_argument("new", type=Path, help="the later run's results.json")
    args = ap.parse_args()
    try:
        old, new = load_rows(args.old), load_rows(args.new)
    except ValueError as exc:
        ap.error(str(exc))
    for label, rows in ((args.old, old), (args.new, new)):
        print(f"{label}:")
        print("\n".join(against_goal(rows)))
    print(f"\nOn the clips both measured (before | after):")
    print("\n".join(compare(old, new)))


if __name__ == "__main__":
    main()
