"""SFTP connectors: host-key verification and AWS Transfer Family-shaped transfers."""
