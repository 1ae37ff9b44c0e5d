"""storaged's second protocol: the S3 API, served outside `/v1/` to requests that carry an AWS Signature V4.

Buckets are the first segment of storaged's keyspace (`s3://B/K` is the native object `B/K`), so both APIs see the
same bytes, ETags and Content-Types. What this folder holds: the S3 error shape (errors.py), signature checking,
the operations and their XML.
"""
