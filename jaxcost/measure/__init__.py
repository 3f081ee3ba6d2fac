"""Measuring on the device: the benchmark loop (``timing``), device peaks (``hardware``) and the
roofline arithmetic of utilization (``roofline``).
"""
