"""Dataset readers and synthetic generators (import name ``kdseg.datasets``).

One reader per on-disk format, shared by the real datasets and the embedded synthetic ones.
"""
