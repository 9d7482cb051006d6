"""Importing splatpack makes idle OpenMP threads sleep (``OMP_WAIT_POLICY=passive``) unless the
environment already chose a policy or a spin count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def policy_after_import(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "import os, splatpack; print(os.environ.get('OMP_WAIT_POLICY', '-'))"
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize(
    "env, policy",
    [({}, "passive"), ({"OMP_WAIT_POLICY": "active"}, "active"), ({"GOMP_SPINCOUNT": "300000"}, "-")],
)
def test_import_sets_a_passive_wait_policy_unless_one_is_chosen(env, policy):
    assert policy_after_import(**env) == policy
