"""Reading micrographs from files and writing samiam's outputs."""

from samiam.io.micrograph import Micrograph
from samiam.io.read import SUPPORTED_SUFFIXES, expand_inputs, read_micrograph

__all__ = ["Micrograph", "SUPPORTED_SUFFIXES", "expand_inputs", "read_micrograph"]
