"""Add up the JUnit XML reports of every pytest run in ``make test``.

    python -m tools.test_summary build/test-results/*.xml [--seconds N]

Prints one line per report and a closing total ("N passed, N failed, N skipped").
Exits non-zero on any failure or error, and on any skipped test: ``make test``
installs every framework and tool, so a skip there means something is missing.
"""
import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count_report(path):
    """(passed, failed, skipped, skip reasons) of one JUnit XML file."""
    passed = failed = skipped = 0
    reasons = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = {child.tag for child in case}
        if outcome & {"failure", "error"}:
            failed += 1
        elif "skipped" in outcome:
            skipped += 1
            message = case.find("skipped").get("message", "")
            reasons.append(f"{case.get('classname')}::{case.get('name')}: {message}")
        else:
            passed += 1
    return passed, failed, skipped, reasons


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--seconds", type=int, help="wall time of the whole run")
    args = parser.parse_args(argv)
    totals = [0, 0, 0]
    all_reasons = []
    for report in args.reports:
        passed, failed, skipped, reasons = count_report(report)
        print(f"  {report.stem:<24} {passed:4d} passed {failed:4d} failed {skipped:4d} skipped")
        totals = [totals[0] + passed, totals[1] + failed, totals[2] + skipped]
        all_reasons += reasons
    for reason in all_reasons:
        print(f"  SKIPPED (counts as a failure in make test): {reason}")
    if args.seconds is not None:
        print(f"  wall time {args.seconds // 60} min {args.seconds % 60} s")
    passed, failed, skipped = totals
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
