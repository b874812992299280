"""Wire models of the HTTP API, one module per endpoint family (`common` for the shared parts).

Shape only (types, required fields, unknown keys rejected); limits that are settings (sizes,
counts) are checked by the serving objects so they can change without a new schema.
"""
