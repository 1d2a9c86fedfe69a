"""Explanations of single predictions: influential training points and input-gradient maps."""
