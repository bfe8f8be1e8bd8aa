"""The images service's code: upload screening, the Pillow pipeline, rendition storage and the records."""
