"""Identity gateway for the WeChat ecosystem."""

__version__ = "0.1.0"
