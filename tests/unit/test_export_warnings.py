"""The export's warning when the phone model labels the held-out photos clearly worse than the
run's head: the figures are those measured at 81 classes (bench-scale, 224 px)."""

from fruits.results.export import arithmetic_warnings, default_quantize


def figures(top1: float, on_the_run: float) -> dict:
    return {"top1": top1, "top1_on_the_runs_pca": {"softmax": on_the_run}}


def test_the_export_follows_the_runs_arithmetic_by_default():
    assert default_quantize("int8") == "int8"
    assert default_quantize("float32") == "none"


def test_a_float_runs_int8_export_that_loses_points_says_how_to_match_them():
    (warning,) = arithmetic_warnings(figures(0.9018, 0.9749), "int8", "float32")
    assert "90.2%" in warning and "97.5%" in warning
    assert "export with --quantize none, or rerun with --precision int8" in warning


def test_an_int8_runs_float_export_names_int8():
    (warning,) = arithmetic_warnings(figures(0.913, 0.9715), "none", "int8")
    assert "export with --quantize int8, or rerun with --precision float32" in warning


def test_a_drop_with_matching_arithmetic_is_said_without_a_fix_that_would_not_help():
    (warning,) = arithmetic_warnings(figures(0.90, 0.97), "int8", "int8")
    assert warning.endswith("on the run's features.")


def test_no_warning_within_two_points_or_without_a_head():
    assert arithmetic_warnings(figures(0.9702, 0.9715), "int8", "int8") == []
    assert arithmetic_warnings(figures(0.96, 0.975), "none", "int8") == []  # 1.5 points: noise
    assert arithmetic_warnings(None, "int8", "float32") == []
