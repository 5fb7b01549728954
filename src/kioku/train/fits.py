"""Bounds before work: a run whose model and batches would need more memory than this
machine has is refused before anything is allocated, with the estimate
(:func:`kioku.models.size.estimate`) and the setting that makes it that large."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ..models import size
from .settings_fields import declared, setting_error

_STATES = {0: "", 1: ", the momentum", 2: ", the optimizer's 2 moments"}


def check_fits(
    settings: Any,
    baseline: Any | None = None,
    given: Iterable[str] = (),
    available: int | None = None,
    **sizes: int | None,
) -> None:
    """``ValueError`` naming a setting when training ``settings`` needs more bytes than
    ``available`` (default: what the machine has available now; unknown: no check).

    The setting named is, among those declared ``sizes`` that are ``given`` or differ
    from ``baseline`` (the preset the run started from), the one whose preset value
    would shrink the estimate most. ``sizes``: those the data decides, as
    :func:`kioku.models.size.parameter_count` takes them."""
    available = size.available_bytes() if available is None else available
    if available is None:
        return
    need = size.estimate(settings, **sizes)
    if need.total <= available:
        return
    name = _culprit(settings, baseline, set(given), sizes)
    have = f"this machine has {size.shown_bytes(available)} available"
    if name is None:  # no setting grew it: the data's vocabulary did
        name, have = "max_vocab", f"a vocabulary of {sizes['vocab_size']} tokens; {have}"
    if need.training >= need.activations:
        detail = (
            f"the weights alone need about {size.shown_bytes(need.weights)} (training about "
            f"{size.shown_bytes(need.total)}: weights, gradients{_STATES[need.states]}, one "
            f"batch's activations), {have}"
        )
    else:
        detail = (
            f"one batch's activations need about {size.shown_bytes(need.activations)} "
            f"(training about {size.shown_bytes(need.total)} in all), {have}"
        )
    value = getattr(settings, name)
    if value is None:
        raise setting_error(ValueError, name, detail)
    raise setting_error(ValueError, name, detail, value)


def _culprit(settings: Any, baseline: Any | None, given: set[str], sizes: dict) -> str | None:
    """The sizing setting whose ``baseline`` value shrinks the estimate most; ``None``
    when none differs from the baseline and the data's vocabulary is known (it is the
    cause), else ``"hidden"``."""
    fields = declared(type(settings))
    values = {name: getattr(settings, name) for name in fields}
    best, smallest = None if sizes.get("vocab_size") else "hidden", None
    for name, field in fields.items():
        if not field.spec.sizes or baseline is None:
            continue
        usual = getattr(baseline, name)
        if name not in given and values[name] == usual:
            continue
        trial = copy.copy(settings)  # unchecked: a mix of sizes only estimated
        object.__setattr__(trial, name, usual)
        total = size.estimate(trial, **sizes).total
        if smallest is None or total < smallest:
            best, smallest = name, total
    return best
