"""The ground floor: host-side helpers below every estimator, and what `import bayesgmm` loads."""

import subprocess
import sys

import bayesgmm as bg
from bayesgmm import _boundary, estimators


def test_import_does_not_load_numpyro_or_arviz():
    code = ("import sys, bayesgmm as bg; loaded = [m for m in ('numpyro', 'arviz_base', 'arviz_stats', 'xarray') "
            "if m in sys.modules]; print(loaded); bg.BayesianGaussianMixture; print('numpyro' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_boundary_helpers_keep_their_public_paths():
    for name in ("check_fit_data", "column_moments", "key_from_random_state", "precision_scope", "PrecisionWarning"):
        assert getattr(estimators, name) is getattr(_boundary, name)
    assert "BayesianGaussianMixture" in dir(bg) and callable(bg.compare)
