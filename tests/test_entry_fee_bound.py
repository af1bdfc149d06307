"""benchmarks/entry_fee_bound.py: the exact item-wise baseline, the all-fees-at-once search, the
paired estimate (zero where the family is item-wise Myerson itself), the command line."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import entry_fee_bound as efb  # noqa: E402


def test_itemwise_myerson_is_exact():
    assert efb.itemwise_myerson(2, 1) == pytest.approx(5 / 12, abs=1e-15)
    assert efb.itemwise_myerson(2, 2) == pytest.approx(float(Fraction(5, 6)), abs=1e-15)
    assert efb.itemwise_myerson(5, 10) == pytest.approx(6.71875, abs=1e-12)


def test_best_fee_is_the_brute_force_maximum():
    rng = np.random.default_rng(3)
    for _ in range(20):
        u, pay = rng.random(300) * rng.integers(1, 4), rng.random(300)
        u[rng.random(300) < 0.2] = 0.0  # ties at zero utility, as for bidders who win nothing
        fees = np.linspace(0, 1.5, 61)
        brute = [np.where(u >= e, pay + e, 0.0).mean() for e in fees]
        rev, e = efb.best_fee(u, pay, fees)
        assert rev == pytest.approx(max(brute), abs=1e-12) and e == fees[int(np.argmax(brute))]


def test_the_family_restricted_to_item_wise_myerson_gains_nothing_and_fees_gain_something():
    row = efb.run(5, 10, 30, 2000, 0, np.array([0.5]), np.array([0.0]), progress=False)
    assert row["fee_at_half"]["gain"] == 0.0 and row["reserve_and_fee"]["gain"] == 0.0
    row = efb.run(5, 10, 60, 4000, 1, np.array([0.4, 0.5, 0.6]), np.linspace(0, 2, 201), progress=False)
    for k in ("fee_at_half", "reserve_and_fee"):
        g = row[k]
        assert 0 < g["gain"] < 0.02 * 6.71875 and g["gain_se"] > 0, row  # about +0.6% to +0.7% (the results file)


def test_the_command_refuses_bad_settings_with_exit_2():
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "entry_fee_bound.py"), "--settings", "5by10", "--no-write"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--settings '5by10'" in p.stderr
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "entry_fee_bound.py"), "--settings", "2x2",
                        "--contexts", "5", "--draws", "200", "--no-write"], capture_output=True, text=True)
    assert p.returncode == 0 and "| 2x2 | 0.83333 |" in p.stdout, p.stdout + p.stderr
