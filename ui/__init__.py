"""Shared Streamlit helpers for the NormScope dashboard (the only place besides pages/ that imports streamlit)."""
