"""Suggestions: better translations sent by users (POST /suggest), kept in a database and
exported as training pairs (`python -m app.suggestions export`)."""
