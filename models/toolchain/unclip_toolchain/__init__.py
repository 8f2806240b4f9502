"""unCLIP Studio model toolchain: exports diffusers unCLIP pipelines to model packs (see models/README.md)."""

__version__ = "0.1.0"

