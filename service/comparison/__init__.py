"""A/B comparisons: many users' rows, each scored like one `/v1/score` call over named variants,
summarised as win rates and score differences with bootstrap intervals, per user and segment.

Used by `POST /v1/compare` (bounded) and `pgenrm compare` (any size). The wire schema of a row
lives in `service.api.schemas.compare`; this package works on the domain `Row` only.
"""
