"""Prototype-level scaling at serving time: the artefact store, profiles and the neighbour source.

Implements the engine's `NeighbourSource` with the artefact format and FAISS index of the
top-level `prototypes` package; the offline learn job reuses `profiles.ProfileBuilder`.
"""
