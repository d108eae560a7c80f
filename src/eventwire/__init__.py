"""eventwire: a real-time event gateway for Python back ends."""

__version__ = "0.1.0"
