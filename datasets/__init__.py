"""Dataset readers and synthetic generators, imported as ``kdseg.datasets``.

One reader per on-disk format, shared by the real datasets and the embedded synthetic ones.
"""

if __name__ == "datasets":  # the repository root is on sys.path: do not shadow PyPI's `datasets`
    from kdseg._namespace import step_aside

    step_aside(__name__, __file__)
