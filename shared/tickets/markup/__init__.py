"""Renderers of a tracker-neutral ticket document into each tracker's markup, each with its own escaping."""
