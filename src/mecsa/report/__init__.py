"""Renderers: they only format an `Assessment`; no check logic lives here."""
