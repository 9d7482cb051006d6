"""The compression core: masking, colour field, quantisers, residual VQ and entropy coders.

Shared by the training presets (``configs/compact.yaml``), post-hoc compression and the
generative modules; each module owns one idea.
"""
