"""deltaprompts: synthetic visual reasoning data with computed ground truth."""

__version__ = "0.1.0"
