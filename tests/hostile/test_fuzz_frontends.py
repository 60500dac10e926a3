"""Fuzzing both front ends: whatever text comes in, a Graph or a CnncError comes out, quickly.

Three sources of input: hypothesis-built DSL statements and YAML documents (near-valid, so
they reach lowering and shape inference, not only the parser), mutations of the example specs
(lines dropped, doubled or swapped, tokens replaced, bytes inserted, text cut), and the corpus
in tests/fuzz_corpus/ of inputs that once failed with something other than a CnncError (or
hung). A new failure found here belongs in that corpus once fixed.
"""

from __future__ import annotations

import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnnc
from cnnc.frontend.spec import load_text
from cnnc.frontend.writers import to_dsl, to_yaml
from cnnc.ir.ops import layer_names

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "specs").glob("*.yaml"))
CORPUS = ROOT / "tests" / "fuzz_corpus"
SECONDS_PER_INPUT = 5.0  # generous on a loaded 2-core machine; a hang would take minutes

WORDS = ["relu", "same", "valid", "softmax", "sigmoid", "x", "none", "true", "input", "repeat",
         "train", "output", "network", "epochs", "nadam", "adam", "sgd"]


class Hang(Exception):
    pass


@contextmanager
def _time_limit(seconds: float):
    """A hang becomes a test failure rather than a test run that never ends."""
    def expire(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check(spec, fmt: str | None = None) -> None:
    """The property: a Graph (which the writers can print) or a CnncError, in bounded time.
    `spec` is text (parsed as `fmt`, or sniffed) or a mapping as from Python."""
    start = time.perf_counter()
    with _time_limit(SECONDS_PER_INPUT * 4):
        try:
            graph = load_text(spec, format=fmt) if fmt else cnnc.load_spec(spec)
        except cnnc.CnncError as err:
            err.render()  # rendering must not fail either (long lines, odd spans)
        else:
            graph.param_count()
            try:
                to_dsl(graph)
                to_yaml(graph)
            except cnnc.CnncError:
                pass  # a graph a writer cannot express (documented refusals) is fine
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS_PER_INPUT, f"{elapsed:.1f} s for {str(spec)[:200]!r}"


# ------------------------------------------------------------------ generated DSL

ints = st.one_of(st.integers(-3, 40), st.sampled_from([0, 2**31, 10**12, 10**30, 99999999999]))
scalars = st.one_of(
    ints.map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "1e999")),
    st.sampled_from(WORDS),
    st.lists(st.integers(0, 30), min_size=2, max_size=4).map(lambda v: "x".join(map(str, v))),
    st.text(alphabet="abc\"\\ \t", max_size=6).map(lambda s: f'"{s}"'),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4).map(
    lambda items: "(" + ", ".join(items) + ")"), max_leaves=8)
arguments = st.lists(st.one_of(values, st.tuples(st.sampled_from(
    ["activation", "padding", "strides", "pool_size", "rate", "units", "filters", "kernel_size",
     "use_bias", "name", "momentum", "axis", "bogus"]), values).map(lambda kv: f"{kv[0]}={kv[1]}")),
    max_size=4)
layer_line = st.tuples(
    st.one_of(st.sampled_from(sorted(layer_names())), st.sampled_from(WORDS)),
    arguments,
    st.one_of(st.none(), st.sampled_from(["a", "b", "c1", "repeat"])),
).map(lambda t: (f"{t[2]}: " if t[2] else "") + " ".join([t[0], *t[1]]))
statement = st.one_of(
    layer_line,
    layer_line.map(lambda line: "repeat 2 { " + line + " }"),
    st.sampled_from(["input 8x8x1", "input 28x28x1", "input 4", "flatten", "add(a, b)",
                     "concatenate(a, c1)", "output a", "network n",
                     "train { epochs 2 batch_size 4 optimizer adam learning_rate=0.1 }",
                     "train { optimizer nadam beta_1=2 }", "}", "{", "(", "repeat 0 { flatten }"]),
)
dsl_texts = st.lists(statement, min_size=1, max_size=8).map(
    lambda lines: "input 8x8x1\n" + "\n".join(lines) + "\n")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(dsl_texts)
def test_generated_dsl(text):
    _check(text, "dsl")


# ------------------------------------------------------------------ generated YAML

yaml_scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=True),
                         st.sampled_from(WORDS + sorted(layer_names())), st.text(max_size=5))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["name", "inputs", "activation", "padding", "units",
                                     "filters", "kernel_size", "strides", "rate", "bogus"]),
                    inner, max_size=3)), max_leaves=10)
yaml_layer = st.one_of(
    st.sampled_from(sorted(layer_names())),
    st.tuples(st.sampled_from(sorted(layer_names())), yaml_values,
              st.dictionaries(st.sampled_from(["name", "inputs", "activation", "padding"]),
                              yaml_scalars, max_size=2)).map(lambda t: {t[0]: t[1], **t[2]}),
    yaml_values,
)
yaml_docs = st.fixed_dictionaries(
    {"input": st.one_of(st.just([8, 8, 1]), st.just("28x28x1"), yaml_values),
     "layers": st.one_of(st.lists(yaml_layer, max_size=6), yaml_values)},
    optional={"network": yaml_scalars, "outputs": yaml_values, "train": yaml_values,
              "bogus": yaml_scalars},
)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(yaml_docs)
def test_generated_yaml(doc):
    text = yaml.safe_dump(doc, default_flow_style=None, allow_unicode=True)
    _check(text, "yaml")
    _check(doc)  # the same mapping given from Python (no marks: once an endless loop)


# ------------------------------------------------------------------ mutated examples


def _mutations(text: str, rng: random.Random, count: int) -> list[str]:
    out = []
    lines = text.splitlines(keepends=True)
    tokens = text.split()
    junk = ["\x00", "\t", "{", "}", "[", "]", "(", ")", ":", "-", "&a", "*a", "'", '"', "#",
            "\\", ";", "=", "x", "999999999999", "-1", "0", "1e400", "nan", "\u00e9", "\r",
            "!!python/object:os.system", "<<: *a", "repeat 99999 {"]
    for _ in range(count):
        kind = rng.randrange(7)
        m = list(lines)
        if kind == 0 and m:
            del m[rng.randrange(len(m))]
        elif kind == 1 and m:
            i = rng.randrange(len(m))
            m.insert(i, m[i])
        elif kind == 2 and len(m) > 1:
            i, j = rng.randrange(len(m)), rng.randrange(len(m))
            m[i], m[j] = m[j], m[i]
        elif kind == 3 and tokens:
            new = text.replace(rng.choice(tokens), rng.choice(junk + tokens), 1)
            out.append(new)
            continue
        elif kind == 4:
            at = rng.randrange(len(text) + 1)
            out.append(text[:at] + rng.choice(junk) + text[at:])
            continue
        elif kind == 5:
            out.append(text[:rng.randrange(len(text) + 1)])
            continue
        else:
            at = rng.randrange(len(text) + 1)
            out.append(text[:at] + text[at:][::-1])
            continue
        out.append("".join(m))
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_mutated_examples(spec):
    text = spec.read_text()
    fmt = "yaml" if spec.suffix == ".yaml" else "dsl"
    rng = random.Random(spec.name)  # the same mutations every run
    for mutated in _mutations(text, rng, 12):
        _check(mutated, fmt)
        _check(mutated)  # sniffed, as text given to cnnc.load_spec


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_many_mutated_examples(spec):
    text = spec.read_text()
    fmt = "yaml" if spec.suffix == ".yaml" else "dsl"
    rng = random.Random(f"slow-{spec.name}")
    for mutated in _mutations(text, rng, 2000):
        _check(mutated, fmt)


# ------------------------------------------------------------------ the corpus

CORPUS_FILES = sorted(p for p in CORPUS.iterdir() if p.name != "README.md")


def test_the_corpus_is_there():
    assert len(CORPUS_FILES) >= 10


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus(path):
    """Each of these once raised something other than a CnncError, or hung; now each must be
    refused with a CnncError (they are all invalid) in bounded time."""
    start = time.perf_counter()
    with pytest.raises(cnnc.CnncError) as err:
        cnnc.load_spec(path)
    err.value.render()
    assert time.perf_counter() - start < SECONDS_PER_INPUT
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    with pytest.raises(cnnc.CnncError):  # and as text, sniffed
        load_text(text)
