"""samiam: segment atomic-resolution micrographs with Segment Anything and a semantic booster."""

__version__ = "0.1.0"
