"""Analysis tasks: each takes a SpineImage (or arrays from it) and returns typed results."""
