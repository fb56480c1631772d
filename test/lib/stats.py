#!/usr/bin/env python3
"""Chi-square goodness of fit for the test tiers: do observed counts match weights?
Standard library only.

  stats.py chisq OBSERVED WEIGHTS [--alpha A]
        counts and weights, comma separated: prints the observed and expected counts,
        the chi-square statistic and its p-value; exit 1 if p <= A (default 0.001)

From Python: chisq(observed, weights) -> (statistic, degrees of freedom, p, expected).
"""
import argparse
import math
import sys


# ---- chi-square survival function via the regularized upper incomplete gamma ----

def _gammainc_lower_series(a, x):
    term = 1.0 / a
    total = term
    n = a
    for _ in range(10000):
        n += 1.0
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gammainc_upper_cf(a, x):
    # Lentz's continued fraction for Q(a, x).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gammaincc(a, x):
    """Regularized upper incomplete gamma Q(a, x)."""
    if x <= 0:
        return 1.0
    if x < a + 1.0:
        return 1.0 - _gammainc_lower_series(a, x)
    return _gammainc_upper_cf(a, x)


def chi2_sf(stat, df):
    return gammaincc(df / 2.0, stat / 2.0)


def chisq(observed, weights):
    total = sum(observed)
    wsum = sum(weights)
    expected = [total * w / wsum for w in weights]
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected) if e > 0)
    df = sum(1 for e in expected if e > 0) - 1
    return stat, df, chi2_sf(stat, df), expected


def cmd_chisq(args):
    observed = [int(v) for v in args.observed.split(",")]
    weights = [float(v) for v in args.weights.split(",")]
    stat, df, p, expected = chisq(observed, weights)
    print(f"observed {observed} expected {[round(e, 1) for e in expected]} "
          f"chi2={stat:.3f} df={df} p={p:.4g}")
    return 0 if p > args.alpha else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("chisq")
    p.add_argument("observed")
    p.add_argument("weights")
    p.add_argument("--alpha", type=float, default=0.001)
    return cmd_chisq(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
