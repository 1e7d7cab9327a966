"""The Transformer models, their training job and their artifacts."""
