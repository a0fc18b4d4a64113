import pytest

from fruits.reduce import choose_k


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
