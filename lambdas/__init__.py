"""Thin Lambda handlers: event in, one core call, response out."""
