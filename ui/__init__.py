"""Shared Streamlit helpers for the NormScope dashboard (the only place besides views/ that imports streamlit)."""
