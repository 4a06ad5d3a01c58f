"""xdrgen: XDR / ONC-RPC interface files to typed, fast Python."""

__version__ = "0.1.0"
