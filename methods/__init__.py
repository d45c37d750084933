"""Training methods (one file each) and their registry, imported as ``kdseg.methods``."""

if __name__ == "methods":  # the repository root is on sys.path: do not shadow a PyPI `methods`
    from kdseg._namespace import step_aside

    step_aside(__name__, __file__)
