"""The base of every JSON body a service reads or writes: a pydantic model that refuses fields it does not know.

A misspelt field is a 400 naming it, never silently ignored. A service's models add what their wire needs on top
(catalogd's aliases, observerd's strict numbers, chatd's frozen values): pydantic merges each `model_config` into
the base's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
