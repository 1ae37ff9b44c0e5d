"""[matrixd]: the embedd and vectord it searches through."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection, Url


class MatrixdConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3218", description="address matrixd listens on")
    embedd_url: Url = Field("http://127.0.0.1:3216", description="embedd, for query text")
    vectord_url: Url = Field("http://127.0.0.1:3215", description="vectord, searched per corpus")
