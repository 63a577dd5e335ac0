"""Explainer of *Data Poisoning Won't Save You From Facial Recognition* (ICLR 2022)."""

__version__ = "0.1.0"
