"""meshc: a declarative GitOps compiler for service meshes."""

__version__ = "0.1.0"
# Where `meshc build` writes when not told (relative to the mesh root); never read as intents.
DEFAULT_OUTPUT = "build"
