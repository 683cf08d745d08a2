"""meshc: a declarative GitOps compiler for service meshes."""

__version__ = "0.1.0"
