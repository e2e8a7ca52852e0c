"""maskleak: measure how much diffusion inpainting changes the pixels outside its mask."""

from maskleak.errors import InputError

__all__ = ["InputError", "__version__"]
__version__ = "0.1.0"
