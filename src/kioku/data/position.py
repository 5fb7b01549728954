"""Where a pass over batches stands: the epoch and the index of the next batch.

Plain data, saved in checkpoints, so that a resumed run sees the same batches; the
batchers (:mod:`.stream`, :mod:`.padded`) say how many batches an epoch has and which
batch ``k`` of the current epoch is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class EpochPosition:
    """``epoch`` and ``batch`` (the next batch's index in the epoch) of a batcher."""

    epoch: int = 0
    batch: int = 0

    def __len__(self) -> int:  # pragma: no cover - every batcher has its own
        raise NotImplementedError

    def batch_source(self) -> Callable[[int], Any]:  # pragma: no cover
        """Batch ``k`` of the current epoch, as a function of ``k``."""
        raise NotImplementedError

    def epoch_batches(self) -> Iterator[Any]:
        """The rest of the current epoch from the saved position, advancing it as it goes.

        When a batch is yielded the position already points past it; at the end of the
        epoch the position moves to batch 0 of the next epoch.
        """
        get = self.batch_source()
        while self.batch < len(self):
            k = self.batch
            self.batch += 1
            yield get(k)
        self.epoch += 1
        self.batch = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        for name in ("epoch", "batch"):
            value = state.get(name) if isinstance(state, dict) else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"data position: field {name!r}: expected an integer >= 0, found {value!r}"
                )
        epoch, batch = state["epoch"], state["batch"]
        if not 0 <= batch <= len(self):
            raise ValueError(f"data position: batch {batch} outside 0..{len(self)}")
        self.epoch, self.batch = epoch, batch
