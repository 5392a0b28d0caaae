"""facealgebra: edit faces with arithmetic on the hierarchical latents of an MMD Variational Ladder Autoencoder."""

__version__ = "0.1.0"
