"""Run by test_daft.py in Daft's own environment (Daft pins an older pyarrow than the project): reads one table
through the REST catalog with daft.read_iceberg and prints its rows as JSON. Arguments: catalog URI, table, filter
column and threshold; the S3 key pair comes in the environment."""

from __future__ import annotations

import json
import os
import sys

import daft
from pyiceberg.catalog.rest import RestCatalog


def main() -> None:
    uri, identifier, column, threshold = sys.argv[1:5]
    catalog = RestCatalog(
        "lake",
        uri=uri,
        **{
            "s3.access-key-id": os.environ["LAKE_ACCESS_KEY"],
            "s3.secret-access-key": os.environ["LAKE_SECRET_KEY"],
            "s3.region": "us-east-1",
        },
    )
    frame = daft.read_iceberg(catalog.load_table(identifier))
    frame = frame.where(daft.col(column) > float(threshold)).sort("id")
    print(json.dumps(frame.to_pydict()))


if __name__ == "__main__":
    main()
