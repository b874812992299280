"""pgenrm: personalised generative reward scoring (P-GenRM) as a service."""

__version__ = "0.1.0"
