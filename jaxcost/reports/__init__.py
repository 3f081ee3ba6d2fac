"""Rendering: units and plain-text tables (``text``), layer comparisons (``layer``), model reports
(``model``), measurements (``performance``) and plots (``plots``). Renderers take records and import
no compiler, so every result type can print itself with them.
"""
