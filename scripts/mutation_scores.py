"""The mutation score per module, from mutmut's results in mutants/ (`make mutation`).

Killed counts the mutants a test caught, timeouts included (the mutant made a test hang, which a run would
notice); the score is killed / (killed + survived), over the mutants checked."""

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut.stats.status_by_exit_code): 1 and 3 a failing test, 0 every test passed,
# the others a timeout, no test for the mutant, or not checked yet.
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {24, -24, 36, 152, 255}


def main() -> int:
    rows = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        module = str(meta.relative_to("mutants"))[: -len(".meta")]
        counts: Counter[str] = Counter()
        for code in json.loads(meta.read_text())["exit_code_by_key"].values():
            if code in KILLED or code in TIMEOUT:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
            elif code is None:
                counts["not checked"] += 1
            else:
                counts["no test"] += 1
        checked = counts["killed"] + counts["survived"]
        score = f"{100 * counts['killed'] / checked:.1f}%" if checked else "-"
        rows.append(
            (
                module,
                sum(counts.values()),
                counts["killed"],
                counts["survived"],
                counts["no test"],
                counts["not checked"],
                score,
            )
        )
    if not rows:
        print("No results in mutants/: run `make mutation` first.")
        return 1
    header = ("module", "mutants", "killed", "survived", "no test", "not checked", "score")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
