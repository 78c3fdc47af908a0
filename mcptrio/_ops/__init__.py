"""Configuration (with the parsing of store URLs it validates) and metrics: plain data, imported
by every wing above the protocol.
"""
