"""``--cache_dofn_specs``: pinned to the Beam it patches, answers as Beam does, and is what the
BundleBasedDirectRunner really calls at every bundle (so the cache is used, not bypassed).
The patched runner's behaviour on stateful monitoring and on a real stream is tested in
test_streaming_monitoring.py and test_streaming_pubsub.py (their ``dofn_specs`` runs)."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.direct import transform_evaluator
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import core, userstate
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.typehints.typecheck import TypeCheckWrapperDoFn
from apache_beam.utils.timestamp import Duration

from beam_pipeline.errors import InputError
from beam_pipeline.streaming import direct_runner_patch
from beam_pipeline.streaming.monitoring import _LatenessGate


class RunningCount(beam.DoFn):
    """A stateful DoFn: per key, the number of elements seen so far."""

    COUNT = ReadModifyWriteStateSpec("count", beam.coders.VarIntCoder())

    def process(self, keyed, count=beam.DoFn.StateParam(COUNT)):
        seen = (count.read() or 0) + 1
        count.write(seen)
        yield keyed[0], seen


def test_the_patched_functions_are_where_this_beam_has_them():
    """Fails loudly when an apache-beam upgrade moves what the patch replaces."""
    assert beam.__version__ == direct_runner_patch.PINNED_BEAM_VERSION, (
        "apache-beam changed: check that the DirectRunner still inspects DoFns through "
        "userstate.get_dofn_specs, then update PINNED_BEAM_VERSION")
    for module in direct_runner_patch.PATCHED_MODULES:
        assert module.get_dofn_specs in (direct_runner_patch._original,
                                         direct_runner_patch.cached_get_dofn_specs)
    # the runner's per-bundle calls go through those names
    assert "is_stateful_dofn" in transform_evaluator._ParDoEvaluator.start_bundle.__code__.co_names
    assert "get_dofn_specs" in userstate.is_stateful_dofn.__code__.co_names
    assert "get_dofn_specs" in userstate.validate_stateful_dofn.__code__.co_names


def test_install_refuses_another_beam_version(monkeypatch):
    monkeypatch.setattr(direct_runner_patch.apache_beam, "__version__", "2.99.0")
    with pytest.raises(InputError, match="2.77.0, not 2.99.0"):
        direct_runner_patch.install()
    assert not direct_runner_patch.installed()


@pytest.mark.parametrize("dofn, cached", [
    (RunningCount(), True),
    (_LatenessGate(beam.window.FixedWindows(10), Duration(5)), True),
    (core.CallableWrapperDoFn(lambda element: element), True),
    (core.CallableWrapperDoFn(len), True),
    # defaults are where parameters are declared: inspected every time
    (core.CallableWrapperDoFn(lambda element, at=beam.DoFn.TimestampParam: element), False),
    # Beam's type-checking wrapper redirects inspection to the DoFn it wraps
    (TypeCheckWrapperDoFn(RunningCount(), RunningCount().get_type_hints()), False),
])
def test_answers_as_beam_does_and_caches_only_what_the_class_fixes(dofn, cached):
    assert (direct_runner_patch._class_key(dofn) is not None) == cached
    assert direct_runner_patch.cached_get_dofn_specs(dofn) == userstate.get_dofn_specs(dofn)


def test_a_dofn_holding_a_bound_method_is_inspected_as_before():
    dofn = RunningCount()
    dofn.helper = RunningCount().process
    assert direct_runner_patch._class_key(dofn) is None


def test_the_streaming_runner_asks_the_cache_at_every_bundle_and_keeps_state(dofn_specs,
                                                                            monkeypatch):
    """A stateful DoFn over five bundles: the same counts either way; with the patch the runner
    asks the cache for every bundle, and Beam's own inspection of this class runs at most once."""
    inspected = []
    original = direct_runner_patch._original

    def counting(dofn):
        inspected.append(type(dofn))
        return original(dofn)

    monkeypatch.setattr(direct_runner_patch, "_original", counting)
    asked = []
    cached = direct_runner_patch.cached_get_dofn_specs
    if dofn_specs == "cached":
        def asking(dofn):
            asked.append(type(dofn))
            return cached(dofn)
        for module in direct_runner_patch.PATCHED_MODULES:
            monkeypatch.setattr(module, "get_dofn_specs", asking)
        direct_runner_patch._cache.pop(RunningCount, None)

    stream = test_stream.TestStream()
    for bundle in range(5):
        stream = stream.add_elements([("k", bundle), ("j", bundle)] if bundle % 2 else
                                     [("k", bundle)])
    options = PipelineOptions(flags=[], runner="BundleBasedDirectRunner")
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        counts = pipeline | stream.advance_watermark_to_infinity() | beam.ParDo(RunningCount())
        assert_that(counts, equal_to([("k", 1), ("k", 2), ("k", 3), ("k", 4), ("k", 5),
                                      ("j", 1), ("j", 2)]))
    if dofn_specs == "cached":
        assert asked.count(RunningCount) >= 5 * 3  # scheduling, start of bundle, runner
        assert inspected.count(RunningCount) == 1
    else:
        assert inspected == []  # the plain runner never goes through the patch module
