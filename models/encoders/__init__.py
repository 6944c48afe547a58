"""Graph encoders (torch-geometric), one per module."""
