"""The S3 protocol as both sides of the gateway speak it: which requests are S3's (`requests`), their signature
(`sigv4`), and S3's error shape (`errors`). The gateway checks client keys' signatures with it, storaged serves the
S3 API with it. It imports nothing of the stack but `shared.errors` and `shared.registry`."""
