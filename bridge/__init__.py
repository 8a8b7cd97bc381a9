"""bridge: a daemon that connects game engines to online game servers."""

__version__ = "0.1.0"
