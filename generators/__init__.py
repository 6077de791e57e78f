"""Visual families: each samples a Spec, renders it to an image and its Facts."""

from deltaprompts.generators.base import FAMILIES, Generator, Rendered, register

__all__ = ["FAMILIES", "Generator", "Rendered", "register"]
