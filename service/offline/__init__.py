"""Offline jobs behind the CLI: evaluation, embedded-backend training, prototype learning.

They sit above the serving layers and may use any of them; nothing in the serving path imports
them (an import-linter contract says so).
"""
