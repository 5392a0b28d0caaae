"""The expression parser and the per-layer arithmetic (numpy only, no model)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facealgebra.algebra import (ExpressionError, Term, check_layers, evaluate, interpolate, parse, parse_layers,
                                 traversal)
from facealgebra.errors import FaceAlgebraError
from facealgebra.latents import Latents


def code(*layers: list[float], name: str = "x", fingerprint: str = "f") -> Latents:
    return Latents(tuple(np.array([layer], dtype=np.float32) for layer in layers), (name,), fingerprint)


# ---- parsing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tokens, expected", [
    (["a.jpg", "-", "b.jpg", "+", "c.jpg"], [Term(1.0, "a.jpg"), Term(-1.0, "b.jpg"), Term(1.0, "c.jpg")]),
    (["face.jpg", "+", "1.5*smile.npz"], [Term(1.0, "face.jpg"), Term(1.5, "smile.npz")]),
    (["0.5*a.jpg", "+", "0.5*b.jpg"], [Term(0.5, "a.jpg"), Term(0.5, "b.jpg")]),
    (["a.jpg", "-", "2*b.npz"], [Term(1.0, "a.jpg"), Term(-2.0, "b.npz")]),
    (["-", "a.jpg", "+", "b.jpg"], [Term(-1.0, "a.jpg"), Term(1.0, "b.jpg")]),
    (["-0.5*a.jpg"], [Term(-0.5, "a.jpg")]),
    (["photos"], [Term(1.0, "photos")]),
])
def test_parse_reads_signed_weighted_terms(tokens, expected):
    assert parse(tokens) == expected


@pytest.mark.parametrize("tokens, index, fragment", [
    (["a.jpg", "-", "-", "b.jpg"], 2, "second sign"),
    (["a.jpg", "+"], 1, "needs a term"),
    (["2*"], 0, "needs a term after '*'"),
    (["a.jpg", "b.jpg"], 1, "expected + or -"),
    (["a.jpg", "-b.jpg"], 1, "space after the sign"),
    (["x*a.jpg"], 0, "not a number"),
    (["nan*a.jpg"], 0, "finite"),
    (["2*-a.jpg"], 0, "sign before the weight"),
    (["a.jpg", "+", "--layer"], 2, "not an option"),
    (["a.jpg", "+", ""], 2, "empty term"),
])
def test_malformed_expression_points_at_the_token(tokens, index, fragment):
    with pytest.raises(ExpressionError) as caught:
        parse(tokens)
    assert caught.value.index == index
    assert f"token {index + 1} {tokens[index]!r}" in str(caught.value)
    assert fragment in str(caught.value)


def test_empty_expression_is_an_expression_error():
    with pytest.raises(ExpressionError, match="empty"):
        parse([])


def test_expression_error_is_a_usage_error():
    assert issubclass(ExpressionError, FaceAlgebraError)


word = st.one_of(st.sampled_from(["+", "-", "*", "a.jpg", "2*", "1.5*b.npz", "-1*c", "--x", "", " ", "nan*a",
                                  "1e999*a", "-b.jpg", "*a"]), st.text(max_size=8))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a busy CI machine is not a failure
@given(st.lists(word, max_size=8))
def test_parser_raises_nothing_but_its_own_error(tokens):
    try:
        terms = parse(tokens)
    except ExpressionError:
        return
    assert len(terms) >= 1 and all(isinstance(term.weight, float) for term in terms)


# ---- layers ----------------------------------------------------------------------------------------------------
def test_parse_layers_sorts_and_deduplicates():
    assert parse_layers("3,1,3", "--layers") == (1, 3)


@pytest.mark.parametrize("text", ["x", "0", "1,,2", ""])
def test_parse_layers_refuses_bad_numbers(text):
    with pytest.raises(FaceAlgebraError, match="--layers"):
        parse_layers(text, "--layers")


def test_check_layers_names_the_layer_and_the_model_depth():
    with pytest.raises(FaceAlgebraError, match="--layer 7: the model has 4 layers"):
        check_layers((7,), 4, "--layer")


# ---- evaluation ------------------------------------------------------------------------------------------------
def test_evaluate_sums_weighted_codes_per_layer():
    a, b, c = code([1, 2], [3]), code([0.5, 0.5], [1]), code([2, 0], [-1])
    result = evaluate(parse(["a", "-", "b", "+", "0.5*c"]), [a, b, c], "expr")
    np.testing.assert_array_equal(result.layers[0], [[1.5, 1.5]])
    np.testing.assert_array_equal(result.layers[1], [[1.5]])
    assert result.names == ("expr",) and result.fingerprint == "f"


def test_evaluate_with_layers_copies_the_others_from_the_first_term():
    a, b = code([0.1, 0.2], [0.3], [0.7]), code([1, 1], [1], [1])
    result = evaluate(parse(["0.5*a", "+", "b"]), [a, b], "expr", layers=(2,))
    assert result.layers[0].tobytes() == a.layers[0].tobytes()
    assert result.layers[2].tobytes() == a.layers[2].tobytes()
    np.testing.assert_allclose(result.layers[1], [[1.15]], rtol=1e-6)


def test_lerp_and_slerp_start_and_end_at_the_ends():
    start, end = code([1, 0]), code([0, 2])
    for spherical in (False, True):
        path = interpolate(start, end, 5, spherical)
        assert len(path) == 5
        np.testing.assert_allclose(path.layers[0][0], [1, 0], atol=1e-6)
        np.testing.assert_allclose(path.layers[0][-1], [0, 2], atol=1e-6)
    middle = interpolate(start, end, 3, spherical=True).layers[0][1]
    assert np.linalg.norm(middle) > np.linalg.norm(interpolate(start, end, 3, spherical=False).layers[0][1])


def test_traversal_walks_one_layer_along_a_unit_direction_and_keeps_the_rest():
    base = Latents((np.array([[5.0, 5.0]]), np.array([[7.0]])), ("b",), "f")
    directions = Latents((np.array([[3.0, 4.0]]), np.array([[1.0]])), ("d",), "f")
    codes = traversal(base, directions, [1], value_range=2.0, steps=3)
    np.testing.assert_allclose(codes.layers[0], [[-1.2, -1.6], [0, 0], [1.2, 1.6]], atol=1e-6)
    np.testing.assert_array_equal(codes.layers[1], [[7.0]] * 3)
