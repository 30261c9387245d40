"""Edges of the library that touch pixels and files: drawing and video writers."""
