"""Colour management (OpenColorIO): config, colourspace names, plate <-> working space, premultiplication."""
