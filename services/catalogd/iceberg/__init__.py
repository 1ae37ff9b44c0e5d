"""The Iceberg REST catalog catalogd serves under /v1/iceberg: every dataset an Iceberg table, every catalog version
one pointer to a table metadata file, and all of it (metadata, manifests, data) in storaged, addressed by the
lakehouse's own S3 API (`s3://<bucket>/<key>` is storaged's key `<bucket>/<key>`).

pyiceberg does the Iceberg work (metadata, requirements and updates, manifests in Avro); this package feeds it bytes
fetched from storaged and stores what it writes. It imports the catalog next door and storaged's client, nothing of
the other services.
"""
