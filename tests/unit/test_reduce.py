import numpy as np
import pytest

from fruits.fit.moments import Moments
from fruits.fit.reduce import choose_k, fit_reduction


@pytest.mark.parametrize(
    "curve, target, expected",
    [
        ([0.5, 0.3, 0.15, 0.05], 0.95, 3),
        ([0.5, 0.3, 0.15, 0.05], 0.8, 2),  # exactly reached counts
        ([0.5, 0.3, 0.15, 0.05], 0.81, 3),
        ([0.5, 0.3, 0.15, 0.05], 1.0, 4),
        ([0.9, 0.1], 0.5, 1),
        ([0.4, 0.3], 0.99, 2),  # never reached (rank-deficient): keep everything
    ],
)
def test_choose_k_is_the_smallest_k_reaching_the_target(curve, target, expected):
    assert choose_k(curve, target) == expected


def test_the_pca_equals_an_svd_of_the_standardized_rows():
    """The reference: NumPy's SVD of the rows standardized as Spark's StandardScaler does
    (mean 0, sample standard deviation 1). Components (up to sign) and explained variance."""
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12)) * rng.uniform(0.1, 30, size=12) + 7.0
    reduction = fit_reduction(Moments.of(rows), k=12, variance=0.95)
    standardized = (rows - rows.mean(axis=0)) / rows.std(axis=0, ddof=1)
    _, singular, vt = np.linalg.svd(standardized, full_matrices=False)
    explained = singular**2 / (singular**2).sum()
    np.testing.assert_allclose(reduction.explained_variance, explained, atol=1e-9)
    signs = np.sign((reduction.components * vt.T).sum(axis=0))
    np.testing.assert_allclose(reduction.components, vt.T * signs, atol=1e-6)
    # and the projection the job writes is those components applied to the standardized rows
    np.testing.assert_allclose(
        rows @ reduction.weights + reduction.bias, standardized @ reduction.components, atol=1e-6
    )
