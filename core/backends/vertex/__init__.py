"""Vertex AI: the pure request (request.py) and the I/O around it (backend.py)."""
