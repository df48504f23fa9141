"""Streamlit-side helpers shared by the pages: cached model loading and input widgets.

Kept apart from the core package so that ``cvplay`` never imports Streamlit.
"""
