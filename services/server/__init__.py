"""Serving Sluice with gunicorn: a gevent worker whose protocol errors are JSON, and the
checks and messages around starting the server.

gunicorn's master imports this before its workers patch the standard library for
gevent, so nothing here may import Flask, requests or the rest of Sluice.
"""
