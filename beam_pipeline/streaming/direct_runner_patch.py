"""Opt-in (``--cache_dofn_specs``): the DirectRunner inspects a DoFn class once, not per bundle.

For every bundle and step, the BundleBasedDirectRunner asks ``userstate.get_dofn_specs`` about
a fresh copy of the step's DoFn four times (scheduling, start of bundle, the DoFn runner's
signature, its validation), and each call runs ``inspect.signature`` on every method of the DoFn:
about half of the runner's worker thread in a py-spy profile of this pipeline. The answer, the
DoFn's state and timer specs, comes from its class's method signatures, so `install` wraps that
function with a cache keyed by the class, for DoFns whose answer their class alone fixes
(`_class_key`; any other DoFn is inspected as before). Nothing else of Beam changes.

Pinned to apache-beam `PINNED_BEAM_VERSION`: `install` refuses another version, and
``tests/test_direct_runner_patch.py`` fails when the functions it replaces move.
"""
from __future__ import annotations

import types
from typing import Any, Optional

import apache_beam
from apache_beam.runners.direct import transform_evaluator
from apache_beam.transforms import core, userstate

from beam_pipeline.errors import InputError

PINNED_BEAM_VERSION = "2.77.0"
#: the modules whose ``get_dofn_specs`` name the runner calls (userstate's own helpers, the
#: DoFn runner and the direct runner call it through ``userstate``; the evaluators imported it)
PATCHED_MODULES = (userstate, transform_evaluator)

_original = userstate.get_dofn_specs
_cache: dict[type, tuple[frozenset, frozenset]] = {}
_redirects_inspection: dict[type, bool] = {}


def _class_key(dofn: Any) -> Optional[type]:
    """The DoFn's class when its state and timer specs depend on nothing else, else None.

    Not cached: DoFns holding bound methods as attributes, DoFns that redirect the inspection of
    a method (``_inspect_*``, as Beam's type-checking wrappers do), and `Map`/`FlatMap`/`ParDo`
    of a callable unless it is a plain function without default arguments (defaults are where
    state and timer parameters are declared)."""
    if any(isinstance(value, types.MethodType)
           for value in getattr(dofn, "__dict__", {}).values()):
        return None
    if isinstance(dofn, core.CallableWrapperDoFn):
        function = dofn._process_argspec_fn()
        plain = (isinstance(function, types.FunctionType) and not function.__defaults__
                 and not function.__kwdefaults__) or isinstance(function, types.BuiltinFunctionType)
        return type(dofn) if plain and dofn._fullargspec is None else None
    cls = type(dofn)
    redirects = _redirects_inspection.get(cls)
    if redirects is None:
        redirects = any(name.startswith("_inspect_") for name in dir(cls))
        _redirects_inspection[cls] = redirects
    return None if redirects else cls


def cached_get_dofn_specs(dofn: Any) -> tuple[set, set]:
    """``userstate.get_dofn_specs`` answered from the cache where `_class_key` allows."""
    key = _class_key(dofn)
    if key is None:
        return _original(dofn)
    specs = _cache.get(key)
    if specs is None:
        state_specs, timer_specs = _original(dofn)
        # a race computes the same answer twice, harmlessly (dict writes are atomic)
        specs = _cache[key] = (frozenset(state_specs), frozenset(timer_specs))
    return set(specs[0]), set(specs[1])


def install() -> None:
    """Replaces ``get_dofn_specs`` in `PATCHED_MODULES` (idempotent); refuses another Beam."""
    if apache_beam.__version__ != PINNED_BEAM_VERSION:
        raise InputError(
            f"--cache_dofn_specs is written for apache-beam {PINNED_BEAM_VERSION}, not "
            f"{apache_beam.__version__}: leave the flag off, or check the runner's calls again")
    for module in PATCHED_MODULES:
        module.get_dofn_specs = cached_get_dofn_specs


def installed() -> bool:
    return all(module.get_dofn_specs is cached_get_dofn_specs for module in PATCHED_MODULES)
