"""The release side: building a versioned release directory, its version, and the model card."""
