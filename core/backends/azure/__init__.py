"""Azure ML: the pure sweep job (request.py) and the I/O around it (backend.py)."""
