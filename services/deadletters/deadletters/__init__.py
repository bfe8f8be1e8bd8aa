"""The dead-letter recorder's code: reading a dead-lettered delivery and storing its record."""
