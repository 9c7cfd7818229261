"""Accuracy of the post-hoc p-values: ``range_tail`` and SciPy's sf against a reference.

``python -m bench.bench_tail`` evaluates P(Q > q) of the studentized range for k groups and
df degrees of freedom at 19 points from p = 0.84 down to p = 1.9e-10, three ways:

- ``core.analysis.posthoc.range_tail``: the fixed Gauss–Legendre rule on the upper tail;
- SciPy's ``studentized_range.sf`` (1 - cdf, the cdf integrated to an absolute 1e-11);
- the reference: nested adaptive quadrature (``scipy.integrate.quad``, relative tolerance
  1e-12 to 1e-13) of the same tail integral (``tests.analysis.test_stats._tail_reference``).

It writes each point's three values and relative errors to ``bench/results/tail_accuracy.json``
and prints them. About 10 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "tail_accuracy.json"

CASES = [
    (2, 2.0, 6.1), (3, 2.3, 30.0), (4, 12.5, 3.6), (4, 12.5, 9.0), (4, 57.0, 5.5),
    (4, 57.0, 7.5), (4, 57.0, 10.0), (6, 57.0, 8.0), (10, 190.3, 5.9), (10, 190.3, 7.5),
    (4, 960.0, 6.5), (4, 960.0, 8.0), (4, 960.0, 9.5), (40, 2000.0, 5.5), (40, 2000.0, 7.0),
    (3, 30.0, 12.0), (2, 5.0, 20.0), (3, 1000.0, 3.0), (3, 1000.0, 0.8),
]  # fmt: skip
"""(k, df, q): two to forty groups, df 2 to 2000 (the rule's range), p from 0.84 to 1.9e-10."""


def main() -> int:
    """Evaluate every case, write the JSON, print a table."""
    from scipy.stats import studentized_range

    from bench import write_results
    from core.analysis.posthoc import range_tail
    from tests.analysis.test_stats import _tail_reference

    rows = []
    started = time.time()
    for k, df, q in CASES:
        ref = _tail_reference(q, k, df)
        tail = range_tail(q, k, df)
        scipy_sf = float(studentized_range.sf(q, k, df))
        rows.append(
            {
                "k": k,
                "df": df,
                "q": q,
                "reference": ref,
                "range_tail": tail,
                "scipy_sf": scipy_sf,
                "range_tail_rel_error": abs(tail - ref) / ref,
                "scipy_rel_error": abs(scipy_sf - ref) / ref,
            }
        )
        r = rows[-1]
        print(
            f"k={k:2d} df={df:7.1f} q={q:5.1f}  p {ref:.3e}  range_tail rel "
            f"{r['range_tail_rel_error']:.1e}  SciPy rel {r['scipy_rel_error']:.1e}"
        )
    figures = {
        "benchmark": "post-hoc p-value accuracy: range_tail and SciPy's sf against a reference",
        "command": "python -m bench.bench_tail",
        "reference": "nested scipy.integrate.quad of the tail integral, relative tolerance "
        "1e-12 (outer) and 1e-13 (inner): tests.analysis.test_stats._tail_reference",
        "cases": rows,
        "worst_range_tail_rel_error": max(r["range_tail_rel_error"] for r in rows),
        "worst_scipy_rel_error": max(r["scipy_rel_error"] for r in rows),
        "duration_s": round(time.time() - started, 1),
    }
    write_results(RESULTS, figures)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
