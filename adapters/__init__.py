"""Server adapters, installed as ``bridge.adapters``: one package per server."""
