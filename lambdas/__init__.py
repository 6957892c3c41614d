"""Thin Lambda handlers: event in, one core call, response out.

The package imports boto3 before anything else, at the shallowest depth a handler's import can
give it, as the floor's ``import boto3`` does (docs/benchmarks.md, issue 11). Python 3.13.0 unmaps
a 16 KiB chunk of its frame stack as soon as the stack drops back below it (CPython gh-142183,
fixed in later 3.13 releases): imported from deep inside a handler's own imports, boto3's urllib3
compiles its URL regular expressions right across a chunk's edge, and maps, faults in and
unmaps a chunk thousands of times, 20-40 ms of the cold start. Imported from here it maps a few
(``bench/cold_import_profile.py --stack-chunks`` counts them).
"""

import boto3  # noqa: F401  (see the docstring: imported first, for the cold start)
