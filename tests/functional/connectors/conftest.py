"""Fixtures of the connector tests: see ``connector_fixtures`` for the servers themselves."""

from __future__ import annotations

from connector_fixtures import aws, client_key, server, service

__all__ = ["aws", "client_key", "server", "service"]
