"""DSL errors: located at the right word, in words a person can act on, never a Lark exception."""

from __future__ import annotations

import pytest
from frontend_helpers import error_of
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnc.errors import CnncError, SpecError
from cnnc.frontend.dsl import load_dsl
from cnnc.frontend.dsl_errors import EXAMPLES, _state_messages, example_state


def test_syntax_error_has_file_line_column_source_line_and_caret():
    text = "network x\ninput 28x28x1\nrepeat 2 {\n        }\n"
    err = error_of(load_dsl, text, file="specs/x.cnn")
    assert isinstance(err, SpecError)
    assert (err.file, err.line, err.column) == ("specs/x.cnn", 4, 9)
    assert err.render() == (
        "specs/x.cnn:4:9: unexpected '}'; expected a layer\n"
        "            }\n"
        "            ^"
    )


@pytest.mark.parametrize("message,snippet", [
    (message, snippet) for message, snippets in EXAMPLES.items() for snippet in snippets
])
def test_each_example_gets_its_own_message(message, snippet):
    assert example_state(snippet) is not None, f"{snippet!r} should not parse"
    assert _state_messages()[example_state(snippet)] == message
    err = error_of(load_dsl, snippet, file="e.cnn")
    assert err.message.endswith("; " + message)
    assert err.message.startswith("unexpected ")


@pytest.mark.parametrize("text,where,message", [
    ("input 8\ndense 4 @", (2, 9), "unexpected character '@'"),
    ("input 8\ndense 4 activation=", (2, 20), ("unexpected end of text; expected a value "
                                               "after '='")),
    ("input 8\ndense 4 activation=\ndense 2", (2, 20), ("unexpected end of line; expected a "
                                                        "value after '='")),
    ("train {\n  epochs 3\n", (2, 11), ("unexpected end of text; expected '}' to close the "
                                        "block opened on line 1")),
    ("input 2\nrepeat 2 {\n  dense 1 # {\n", (3, 14), ("unexpected end of text; expected '}' to "
                                                       "close the block opened on line 2")),
    ("add(a b)", (1, 7), "unexpected 'b'; expected ',' or ')' in the list of inputs"),
])
def test_syntax_errors_in_words(text, where, message):
    err = error_of(load_dsl, text)
    assert (err.line, err.column) == where
    assert err.message.startswith(message)


def test_unknown_layer_is_located_with_a_suggestion():
    err = error_of(load_dsl, "input 28x28x1\n  conv2e 64 3", file="a.cnn")
    assert err.headline() == "a.cnn:2:3: unknown layer 'conv2e'; did you mean 'conv2d'?"
    assert err.render().splitlines()[2] == "      ^"


def test_unknown_argument_is_located_at_the_keyword_with_a_suggestion():
    err = error_of(load_dsl, "input 28x28x1\nconv2d 64 3 stride=2", file="a.cnn")
    assert err.headline() == ("a.cnn:2:13: conv2d: unknown argument 'stride' for conv2d; "
                              "did you mean 'strides'?")


def test_misspelt_bare_word_gets_a_suggestion():
    err = error_of(load_dsl, "input 28x28x1\nconv2d 64 3 rleu same")
    assert (err.line, err.column) == (2, 13)
    assert "'rleu' is not a word conv2d understands" in err.message
    assert err.hint == "did you mean 'relu'?"


def test_bad_value_names_the_layer_and_points_at_the_value():
    text = "input 28x28x1\nconv2d 8 3\nconv2d 8 3\nconv2d 8 3\nconv2d 8 3\nconv2d 0 3"
    err = error_of(load_dsl, text, file="x.cnn")
    assert err.headline() == ("x.cnn:6:8: conv2d_4: Expected a strictly positive integer. "
                              "Received filters=0.")


def test_bad_keyword_value_points_at_the_value():
    err = error_of(load_dsl, "input 28x28x1\nconv2d 8 3 kernel_size=-1")
    assert err.message == ("conv2d: argument 'kernel_size' is given twice (once by position)")
    err = error_of(load_dsl, "input 28x28x1\nconv2d 8 kernel_size=-1")
    assert (err.line, err.column) == (2, 22)
    assert err.message == ("conv2d: Expected a positive integer or a pair of positive integers. "
                           "Received kernel_size=-1.")


def test_too_many_positional_values():
    err = error_of(load_dsl, "input 28x28x1\nconv2d 8 3 3")
    assert err.message == ("conv2d: conv2d takes 2 positional arguments (filters, kernel_size); "
                           "3 is one too many")
    assert (err.line, err.column) == (2, 12)


def test_missing_required_argument():
    err = error_of(load_dsl, "input 28x28x1\nconv2d 8")
    assert err.message == "conv2d: conv2d needs the argument 'kernel_size'"
    assert (err.line, err.column) == (2, 1)


def test_argument_given_twice():
    err = error_of(load_dsl, "input 8\ndense 4 units=4 units=5")
    assert (err.message, err.column) == ("argument 'units' is given twice", 17)


def test_train_errors_point_into_the_block():
    err = error_of(load_dsl, "input 8\ndense 2\ntrain { epochs 3  optimizer nadam beta_1=1.5 }")
    assert (err.line, err.column) == (3, 42)
    assert err.message == "Expected a number in [0, 1). Received beta_1=1.5."
    err = error_of(load_dsl, "input 8\ndense 2\ntrain {\n  epoch 3\n}")
    assert (err.line, err.column, err.message, err.hint) == (
        4, 3, "unknown key 'epoch'", "did you mean 'epochs'?")
    err = error_of(load_dsl, "input 8\ndense 2\ntrain { optimizer nadm }")
    assert (err.column, err.hint) == (19, "did you mean 'nadam'?")
    err = error_of(load_dsl, "input 8\ndense 2\ntrain { epochs 1 epochs 2 }")
    assert (err.column, err.message) == (18, "the setting 'epochs' is given twice")


def test_statements_given_twice():
    err = error_of(load_dsl, "network a\nnetwork b\ninput 2\ndense 1")
    assert err.line == 2 and "given twice (first at line 1)" in err.message
    err = error_of(load_dsl, "input 2\ndense 1\ntrain { }\ntrain { }")
    assert err.line == 4


def test_repeat_count_must_be_positive():
    err = error_of(load_dsl, "input 2\nrepeat 0 { dense 1 }")
    assert (err.line, err.column) == (2, 8)
    assert err.message == "repeat needs a count of 1 or more. Received 0."


def test_huge_repeat_is_refused_before_unrolling():
    err = error_of(load_dsl, "input 2\nrepeat 1000000000 { dense 1 }")
    assert "more than" in err.message and err.column == 8


def test_bad_string_escape_is_a_spec_error():
    err = error_of(load_dsl, 'network "a\\qb"\ninput 2\ndense 1')
    assert err.line == 1 and "escape" in err.message


TOKENS = ["input", "dense", "conv2d", "add", "repeat", "train", "output", "network", "a", "b",
          "a:", "(", ")", "{", "}", ",", ";", "\n", "=", "x=", "8", "3x3", "-1", "0.5", "relu",
          "same", "true", '"s"', "#c\n", "epochs", "optimizer", "add(", "dense(", "28x28x1"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_any_token_soup_gives_a_graph_or_a_cnnc_error(tokens):
    text = " ".join(tokens)
    try:
        load_dsl(text)
    except CnncError as err:
        assert err.render()  # renders without failing
