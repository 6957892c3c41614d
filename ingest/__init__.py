"""sftp-ingest core: feeds, formats, chunk planning, records, the ledger and the use cases."""
