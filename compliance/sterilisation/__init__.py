"""Steriliser tests, loads, packs, recalls and the steriliser's own cycle records."""
from . import load_pdf  # noqa: F401  (registers the load's PDF on the sterilisation blueprint, as views.py does curve_views)
