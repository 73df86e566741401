"""The pipeline's outputs and the DVC remote: what dvc.lock records, what is stored, what was restored."""
