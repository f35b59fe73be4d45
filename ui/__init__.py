"""Streamlit helpers shared by the pages: the guard, navigation, formatting."""
