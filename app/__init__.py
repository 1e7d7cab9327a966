"""The HTTP service: translation, sentiment and attention maps from versioned artifacts."""
