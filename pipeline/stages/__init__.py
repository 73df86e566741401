"""DVC stages: thin shells that read inputs and params, call pure code, write outputs."""
