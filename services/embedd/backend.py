"""What every embedding backend gives back, and the protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Batch:
    """Vectors for a list of texts, in order (one row each), and each text's token count."""

    vectors: Vectors
    tokens: list[int]


class Backend(Protocol):
    """An embedding provider. Errors are raised as LakehouseError with the stack's codes."""

    name: str

    def check(self, model: str) -> None:
        """Raise for a model known to be missing before any call (built-in names); a remote backend finds out later."""

    async def embed(self, model: str, texts: list[str]) -> Batch: ...

    async def aclose(self) -> None: ...
