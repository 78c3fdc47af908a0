"""HTTP mechanics only: the request/response interface, the HTTP/1.1 and ASGI adapters, TLS,
Host/Origin checks and per-client budgets.
"""
