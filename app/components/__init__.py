"""Reusable view pieces for the Streamlit pages."""
