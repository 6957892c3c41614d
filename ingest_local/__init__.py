"""The embedded stand-in for AWS: moto server, the deployed template, the Lambda service
emulation and the S3-backed SFTP gateway (``ingest up``)."""
