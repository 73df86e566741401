__version__ = "1.1.0"  # the package's own version; the models it loads are contract major CONTRACT_MAJOR
