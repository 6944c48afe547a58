"""Streamlit pages (run by ``st.navigation`` from app/main.py)."""
